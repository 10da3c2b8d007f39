import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";
import {
  CLOCK_KINDS,
  createClock,
  cyclesAtNs,
  HostClock,
  MAX_CYCLE_FREQUENCY_HZ,
  nsAtCycles,
  VirtualClock,
} from "./clock.ts";

const PIT_HZ = 1_193_182;

Deno.test("VirtualClock starts at 0 and moves only when advanced", () => {
  const clock = new VirtualClock();
  assertEquals(clock.nowNs(), 0);
  assertEquals(clock.nowNs(), 0);
  clock.advanceNs(1_500);
  clock.advanceNs(0);
  clock.advanceNs(500);
  assertEquals(clock.nowNs(), 2_000);
});

Deno.test("VirtualClock starts at a given time", () => {
  assertEquals(new VirtualClock(42).nowNs(), 42);
});

Deno.test("VirtualClock.advanceNs() rejects negative, fractional and unsafe durations", () => {
  const clock = new VirtualClock(10);
  assertThrows(() => clock.advanceNs(-1), RangeError, "durationNs -1");
  assertThrows(() => clock.advanceNs(0.5), RangeError, "durationNs 0.5");
  assertThrows(() => clock.advanceNs(Number.NaN), RangeError);
  assertThrows(() => clock.advanceNs(Number.MAX_SAFE_INTEGER), RangeError, "nowNs");
  assertEquals(clock.nowNs(), 10);
  assertThrows(() => new VirtualClock(-5), RangeError, "startNs -5");
});

Deno.test("HostClock never goes backwards on the real host clock", () => {
  const clock = new HostClock();
  let previousNs = clock.nowNs();
  assert(previousNs >= 0);
  for (let i = 0; i < 1_000; i++) {
    const ns = clock.nowNs();
    assert(Number.isSafeInteger(ns));
    assert(ns >= previousNs, `time went back from ${previousNs} to ${ns}`);
    previousNs = ns;
  }
});

Deno.test("HostClock holds its time when the host source steps back", () => {
  const readingsMs = [100, 100.5, 100.25, 99, 101]; // exact binary fractions
  let i = 0;
  const clock = new HostClock(() => readingsMs[Math.min(i++, readingsMs.length - 1)]);
  const seen = [clock.nowNs(), clock.nowNs(), clock.nowNs(), clock.nowNs()];
  assertEquals(seen, [500_000, 500_000, 500_000, 1_000_000]);
});

Deno.test("createClock() builds each clock kind", () => {
  assertEquals(CLOCK_KINDS, ["virtual", "host"]);
  assert(createClock("virtual") instanceof VirtualClock);
  assert(createClock("host") instanceof HostClock);
});

Deno.test("cyclesAtNs() counts whole cycles exactly beyond 2^53 / f nanoseconds", () => {
  assertEquals(cyclesAtNs(0, PIT_HZ), 0);
  assertEquals(cyclesAtNs(838, PIT_HZ), 0); // one PIT cycle is 838.095 ns
  assertEquals(cyclesAtNs(839, PIT_HZ), 1);
  assertEquals(cyclesAtNs(1_000_000_000, PIT_HZ), PIT_HZ);
  // Ten days: ns × f would be far beyond 2^53 if multiplied directly.
  const tenDaysNs = 10 * 86_400 * 1_000_000_000;
  assertEquals(cyclesAtNs(tenDaysNs + 839, PIT_HZ), 10 * 86_400 * PIT_HZ + 1);
});

Deno.test("nsAtCycles() rounds down by default and up on request", () => {
  assertEquals(nsAtCycles(0, PIT_HZ), 0);
  assertEquals(nsAtCycles(1, PIT_HZ), 838);
  assertEquals(nsAtCycles(1, PIT_HZ, "ceil"), 839);
  assertEquals(nsAtCycles(PIT_HZ, PIT_HZ, "ceil"), 1_000_000_000);
  assertEquals(nsAtCycles(3 * PIT_HZ + 1, PIT_HZ), 3_000_000_838);
});

Deno.test('nsAtCycles(..., "ceil") is the first time cyclesAtNs() reaches the count', () => {
  for (const cycles of [1, 2, 11_932, 65_536, 999_999, 12_345_678_901]) {
    const ns = nsAtCycles(cycles, PIT_HZ, "ceil");
    assertEquals(cyclesAtNs(ns, PIT_HZ), cycles);
    assertEquals(cyclesAtNs(ns - 1, PIT_HZ), cycles - 1);
  }
});

Deno.test("cyclesAtNs() and nsAtCycles() reject invalid arguments", () => {
  assertThrows(() => cyclesAtNs(-1, PIT_HZ), RangeError);
  assertThrows(() => cyclesAtNs(1, 0), RangeError, "frequency 0 Hz");
  assertThrows(() => cyclesAtNs(1, MAX_CYCLE_FREQUENCY_HZ + 1), RangeError);
  assertThrows(() => nsAtCycles(1.5, PIT_HZ), RangeError, "cycle count 1.5");
  assertThrows(() => nsAtCycles(1, 2.5), RangeError);
});

Deno.test("cyclesAtNs() and nsAtCycles() stay exact for clocks up to 1 GHz (checked with BigInt)", () => {
  const rng = new Xorshift32(0x5eed1234);
  for (let i = 0; i < 20_000; i++) {
    const frequencyHz = 1 + rng.below(MAX_CYCLE_FREQUENCY_HZ);
    const nowNs = rng.next() * 2_000_000 + rng.below(2_000_000);
    const cycles = (BigInt(nowNs) * BigInt(frequencyHz)) / 1_000_000_000n;
    assertEquals(
      BigInt(cyclesAtNs(nowNs, frequencyHz)),
      cycles,
      `${nowNs} ns at ${frequencyHz} Hz`,
    );
    const count = Number(cycles);
    const product = BigInt(count) * 1_000_000_000n;
    const floorNs = product / BigInt(frequencyHz);
    const ceilNs = floorNs + (product % BigInt(frequencyHz) === 0n ? 0n : 1n);
    assertEquals(BigInt(nsAtCycles(count, frequencyHz)), floorNs);
    assertEquals(BigInt(nsAtCycles(count, frequencyHz, "ceil")), ceilNs);
  }
  assertEquals(MAX_CYCLE_FREQUENCY_HZ, 1_000_000_000);
  assertEquals(cyclesAtNs(12_345, 100_000_000), 1_234, "the HPET's 100 MHz: 10 ns per count");
  assertEquals(nsAtCycles(62_500_000, 62_500_000), 1_000_000_000);
});
