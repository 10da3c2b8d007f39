; mbi_dump.asm: a tiny multiboot2 kernel that hex-dumps its boot information
; (MBI) over COM1, for scripts/capture_grub_mbi.sh.
;
; GRUB enters it in 32-bit protected mode, paging off, with EAX = 0x36d76289
; and EBX = the MBI's physical address (docs/multiboot2.md, "Machine state at
; entry"). It prints
;
;   MBI-CAPTURE magic=36d76289 ebx=00104768 size=00000348
;   <the MBI's total_size bytes as hex, 32 bytes a line>
;   MBI-END
;
; then writes 0 to QEMU's isa-debug-exit port 0xf4, which ends QEMU.
;
; Assemble with -DKEEP_EFI_BOOT_SERVICES to add the header tags that ask
; GRUB to leave EFI boot services running and to enter at a 64-bit entry
; point, as GRUB then does (UEFI only: the MBI then carries tag 18).

bits 32

MB2_HEADER_MAGIC        equ 0xe85250d6
MB2_ARCH_I386           equ 0
MB2_HEADER_TAG_END      equ 0
MB2_HEADER_TAG_FB       equ 5
MB2_HEADER_TAG_EFI_BS   equ 7
MB2_HEADER_TAG_ENTRY_EFI64 equ 9
MB2_HEADER_TAG_OPTIONAL equ 1

COM1                    equ 0x3f8        ; 16550A base port
UART_THR                equ 0            ; transmit holding register
UART_IER                equ 1            ; interrupt enable
UART_FCR                equ 2            ; FIFO control
UART_LCR                equ 3            ; line control (bit 7: DLAB)
UART_MCR                equ 4            ; modem control
UART_LSR                equ 5            ; line status (bit 5: THR empty)
LSR_THRE                equ 0x20
DEBUG_EXIT_PORT         equ 0xf4         ; QEMU -device isa-debug-exit,iobase=0xf4
BYTES_PER_LINE          equ 32
STACK_BYTES             equ 16384

section .multiboot2 progbits alloc noexec nowrite align=8
header_start:
    dd MB2_HEADER_MAGIC
    dd MB2_ARCH_I386
    dd header_end - header_start
    dd 0x100000000 - (MB2_HEADER_MAGIC + MB2_ARCH_I386 + (header_end - header_start))
    ; Framebuffer request: 1024x768x32, optional (text mode if GRUB cannot).
    align 8, db 0
    dw MB2_HEADER_TAG_FB, MB2_HEADER_TAG_OPTIONAL
    dd 20
    dd 1024, 768, 32
%ifdef KEEP_EFI_BOOT_SERVICES
    align 8, db 0
    dw MB2_HEADER_TAG_EFI_BS, 0
    dd 8
    align 8, db 0
    dw MB2_HEADER_TAG_ENTRY_EFI64, 0
    dd 12
    dd _start_efi64
%endif
    align 8, db 0
    dw MB2_HEADER_TAG_END, 0
    dd 8
header_end:

section .text progbits alloc exec nowrite align=16

; DUMPER BITS: the entry code and its helpers for one CPU mode. GRUB enters at
; _start (32-bit protected mode); with KEEP_EFI_BOOT_SERVICES it enters at
; _start_efi64 in 64-bit long mode (firmware's identity-mapped page tables),
; the EFI amd64 entry address of the header. The code is the same but for
; the width of the registers pushed and used as pointers.
%macro DUMPER 1
bits %1
%if %1 == 64
  %define rA rax
  %define rC rcx
  %define rD rdx
  %define rS rsi
%else
  %define rA eax
  %define rC ecx
  %define rD edx
  %define rS esi
%endif
entry%1:
    cli
    mov esp, stack_top              ; zero-extends into RSP in 64-bit mode
    mov [saved_magic], eax
    mov [saved_mbi], ebx
    call serial_init%1

    mov esi, msg_begin
    call puts%1
    mov eax, [saved_magic]
    call puthex32_%1
    mov esi, msg_ebx
    call puts%1
    mov eax, [saved_mbi]
    call puthex32_%1
    mov esi, msg_size
    call puts%1
    mov esi, [saved_mbi]
    mov eax, [rS]                   ; total_size
    call puthex32_%1
    call newline%1

    mov esi, [saved_mbi]
    mov ecx, [rS]                   ; bytes left
    xor edx, edx                    ; bytes on this line
%%dump:
    test ecx, ecx
    jz %%dumped
    mov al, [rS]
    call puthex8_%1
    add esi, 1
    sub ecx, 1
    add edx, 1
    cmp edx, BYTES_PER_LINE
    jne %%dump
    call newline%1
    xor edx, edx
    jmp %%dump
%%dumped:
    test edx, edx
    jz %%ended
    call newline%1
%%ended:
    mov esi, msg_end
    call puts%1

    mov dx, DEBUG_EXIT_PORT
    xor eax, eax
    out dx, al
%%halt:
    hlt
    jmp %%halt

; 115200 baud (divisor 1), 8N1, FIFOs on, no interrupts.
serial_init%1:
    mov dx, COM1 + UART_IER
    xor al, al
    out dx, al
    mov dx, COM1 + UART_LCR
    mov al, 0x80
    out dx, al
    mov dx, COM1 + 0                ; divisor low (DLAB set)
    mov al, 1
    out dx, al
    mov dx, COM1 + 1                ; divisor high
    xor al, al
    out dx, al
    mov dx, COM1 + UART_LCR
    mov al, 0x03
    out dx, al
    mov dx, COM1 + UART_FCR
    mov al, 0xc7
    out dx, al
    mov dx, COM1 + UART_MCR
    mov al, 0x03
    out dx, al
    ret

; putc: AL = byte. Preserves every register but flags.
putc%1:
    push rD
    push rA
    mov dx, COM1 + UART_LSR
%%wait:
    in al, dx
    test al, LSR_THRE
    jz %%wait
    pop rA
    mov dx, COM1 + UART_THR
    out dx, al
    pop rD
    ret

; puts: ESI = NUL-terminated string. Clobbers ESI.
puts%1:
    push rA
%%next:
    mov al, [rS]
    add esi, 1
    test al, al
    jz %%done
    call putc%1
    jmp %%next
%%done:
    pop rA
    ret

newline%1:
    push rA
    mov al, 10
    call putc%1
    pop rA
    ret

; puthex8: AL as two lowercase hex digits.
puthex8_%1:
    push rA
    push rA
    shr al, 4
    call puthex4_%1
    pop rA
    call puthex4_%1
    pop rA
    ret

puthex4_%1:
    push rA
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe %%digit
    add al, 'a' - '9' - 1
%%digit:
    call putc%1
    pop rA
    ret

; puthex32: EAX as eight hex digits.
puthex32_%1:
    push rA
    rol eax, 8
    call puthex8_%1
    rol eax, 8
    call puthex8_%1
    rol eax, 8
    call puthex8_%1
    rol eax, 8
    call puthex8_%1
    pop rA
    ret
%endmacro

global _start
_start:
DUMPER 32

%ifdef KEEP_EFI_BOOT_SERVICES
_start_efi64:
DUMPER 64
%endif

section .rodata progbits alloc noexec nowrite align=4
msg_begin: db "MBI-CAPTURE magic=", 0
msg_ebx:   db " ebx=", 0
msg_size:  db " size=", 0
msg_end:   db "MBI-END", 10, 0

section .bss nobits alloc noexec write align=16
saved_magic: resd 1
saved_mbi:   resd 1
stack_bottom:
    resb STACK_BYTES
stack_top:
