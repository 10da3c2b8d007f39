#!/usr/bin/env bash
# Captures multiboot2 boot information (MBI) from real GRUB 2 under QEMU, for
# the fixtures in tests/fixtures/grub/. CI does not run this: the captures are
# committed, and this script is how they were made.
#
# Usage: scripts/capture_grub_mbi.sh [OUTPUT_DIR]   (default tests/fixtures/grub)
#
# Needs Debian's qemu-system-x86 grub-pc-bin grub-efi-amd64-bin grub-common
# xorriso mtools ovmf nasm binutils xxd. For each capture it builds
# grub_capture/mbi_dump.asm (a multiboot2 kernel that hex-dumps its MBI over
# COM1), a bootable ISO with grub-mkrescue (grub_capture/grub.cfg: the kernel
# with a command line and one module), boots it headless with SeaBIOS or OVMF
# at one memory size, and turns the serial log into NAME.mbi (the MBI bytes)
# and an entry of index.json (where GRUB put it: EBX).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/grub_capture"
out=${1:-"$here/../tests/fixtures/grub"}
ovmf=/usr/share/ovmf/OVMF.fd
timeout_s=180

for tool in nasm ld grub-mkrescue xorriso mformat qemu-system-x86_64 xxd; do
  command -v "$tool" >/dev/null || {
    echo "capture_grub_mbi: $tool is missing (apt-get install qemu-system-x86 grub-pc-bin" \
      "grub-efi-amd64-bin grub-common xorriso mtools ovmf nasm binutils xxd)" >&2
    exit 2
  }
done
[ -f "$ovmf" ] || { echo "capture_grub_mbi: $ovmf is missing (apt-get install ovmf)" >&2; exit 2; }
[ -d /usr/lib/grub/i386-pc ] && [ -d /usr/lib/grub/x86_64-efi ] || {
  echo "capture_grub_mbi: GRUB's i386-pc and x86_64-efi platforms are both needed" >&2
  exit 2
}

work=$(mktemp -d)
[ -n "${KEEP_WORK:-}" ] && echo "capture_grub_mbi: work files in $work" >&2 || trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# build_kernel VARIANT: elf32, elf64 (the same 32-bit code in an ELF64 file)
# or elf32-efi-bs (asks GRUB to keep EFI boot services).
build_kernel() {
  local variant=$1 format=elf32 emulation=elf_i386 defines=()
  case $variant in
    elf64) format=elf64 emulation=elf_x86_64 ;;
    elf32-efi-bs) defines=(-DKEEP_EFI_BOOT_SERVICES) ;;
  esac
  nasm -f "$format" "${defines[@]}" -o "$work/$variant.o" "$src/mbi_dump.asm"
  ld -m "$emulation" -n --no-warn-rwx-segments -T "$src/linker.ld" \
    -o "$work/$variant.elf" "$work/$variant.o"
}

# build_iso NAME VARIANT: an ISO that boots under BIOS and UEFI alike.
build_iso() {
  local name=$1 variant=$2 root="$work/iso-$1"
  mkdir -p "$root/boot/grub"
  cp "$work/$variant.elf" "$root/boot/mbi_dump.elf"
  cp "$src/module.txt" "$root/boot/module.txt"
  sed "s/@CAPTURE@/$name/" "$src/grub.cfg" >"$root/boot/grub/grub.cfg"
  grub-mkrescue -o "$work/$name.iso" "$root" >"$work/$name.mkrescue.log" 2>&1
}

entries=()

# capture NAME FIRMWARE MEMORY VARIANT DESCRIPTION
capture() {
  local name=$1 firmware=$2 memory=$3 variant=$4 description=$5
  local serial="$work/$name.serial" firmware_args=()
  [ "$firmware" = uefi ] && firmware_args=(-bios "$ovmf")
  build_iso "$name" "$variant"
  echo "capture_grub_mbi: $name ($firmware, -m $memory, $variant)" >&2
  # isa-debug-exit: the kernel's write to port 0xf4 ends QEMU with status 1.
  timeout "$timeout_s" qemu-system-x86_64 -nographic -monitor none -no-reboot -nic none \
    "${firmware_args[@]}" -m "$memory" -cdrom "$work/$name.iso" -boot d \
    -serial "file:$serial" -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    >"$work/$name.qemu.log" 2>&1 || true
  # GRUB's "Booting ..." line has no newline before the kernel's first line.
  tr -d '\r' <"$serial" | sed 's/.*MBI-CAPTURE /MBI-CAPTURE /' >"$serial.lines"
  local header
  header=$(grep -a -m1 '^MBI-CAPTURE ' "$serial.lines") || {
    echo "capture_grub_mbi: $name: no MBI-CAPTURE line on the serial port" >&2
    tail -n 20 "$serial" "$work/$name.qemu.log" >&2 || true
    exit 1
  }
  local magic ebx size
  magic=$(sed -E 's/.*magic=([0-9a-f]{8}).*/\1/' <<<"$header")
  ebx=$(sed -E 's/.*ebx=([0-9a-f]{8}).*/\1/' <<<"$header")
  size=$(sed -E 's/.*size=([0-9a-f]{8}).*/\1/' <<<"$header")
  sed -n '/^MBI-CAPTURE /,/^MBI-END$/p' "$serial.lines" | sed '1d;$d' |
    xxd -r -p >"$out/$name.mbi"
  local got
  got=$(stat -c %s "$out/$name.mbi")
  if [ "$got" -ne $((16#$size)) ]; then
    echo "capture_grub_mbi: $name: got $got bytes, total_size says $((16#$size))" >&2
    exit 1
  fi
  entries+=("$(printf '    {\n      "file": "%s.mbi",\n      "firmware": "%s",\n      "memory": "%s",\n      "kernel": "%s",\n      "magic": "0x%x",\n      "mbiAddress": "0x%x",\n      "totalSize": %d,\n      "description": "%s"\n    }' \
    "$name" "$firmware" "$memory" "$variant" $((16#$magic)) $((16#$ebx)) "$got" "$description")")
}

build_kernel elf32
build_kernel elf64
build_kernel elf32-efi-bs

capture bios-128m bios 128M elf32 "SeaBIOS, 128 MiB, ELF32 kernel"
capture bios-1g bios 1G elf32 "SeaBIOS, 1 GiB, ELF32 kernel"
capture bios-5g bios 5G elf32 "SeaBIOS, 5 GiB (RAM above 4 GiB), ELF32 kernel"
capture bios-elf64-512m bios 512M elf64 "SeaBIOS, 512 MiB, ELF64 kernel (64-byte section headers)"
capture uefi-256m uefi 256M elf32 "OVMF, 256 MiB, ELF32 kernel"
capture uefi-2g uefi 2G elf32 "OVMF, 2 GiB, ELF32 kernel"
capture uefi-5g uefi 5G elf32 "OVMF, 5 GiB (RAM above 4 GiB), ELF32 kernel"
capture uefi-efi-bs-256m uefi 256M elf32-efi-bs \
  "OVMF, 256 MiB, kernel header asks to keep EFI boot services (tag 18, no memory map)"

{
  printf '{\n  "generator": "scripts/capture_grub_mbi.sh",\n'
  printf '  "grub": "%s",\n' "$(grub-mkrescue --version | sed 's/.*(GRUB) //')"
  printf '  "qemu": "%s",\n' "$(qemu-system-x86_64 --version | head -n1 | sed 's/.*version //')"
  printf '  "captures": [\n'
  for i in "${!entries[@]}"; do
    printf '%s' "${entries[$i]}"
    [ "$i" -lt $((${#entries[@]} - 1)) ] && printf ','
    printf '\n'
  done
  printf '  ]\n}\n'
} >"$out/index.json"
echo "capture_grub_mbi: wrote ${#entries[@]} captures and index.json to $out" >&2
