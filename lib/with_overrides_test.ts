import { assertEquals, assertThrows } from "../testing/mod.ts";
import { withOverrides } from "./with_overrides.ts";

class Account {
  #balanceCents = 0;
  readonly owner = "ada";

  deposit(cents: number): void {
    if (cents <= 0) throw new RangeError(`Invalid deposit ${cents}`);
    this.#balanceCents += cents;
  }

  get balanceCents(): number {
    return this.#balanceCents;
  }
}

Deno.test("withOverrides() answers the overridden methods and passes the rest to the target", () => {
  const account = new Account();
  const calls: number[] = [];
  const wrapped = withOverrides(account, {
    deposit(cents: number) {
      calls.push(cents);
      account.deposit(cents);
    },
  });
  wrapped.deposit(5);
  // A method taken off the proxy keeps its target: private fields still work.
  const { deposit } = withOverrides(account, {});
  deposit(7);
  assertEquals(calls, [5]);
  assertEquals([wrapped.balanceCents, wrapped.owner], [12, "ada"]);
  assertThrows(() => deposit(-1), RangeError, "Invalid deposit -1");
});
