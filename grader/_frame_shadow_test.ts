import { assertEquals } from "../testing/mod.ts";
import {
  FrameShadow,
  SHADOW_FREE,
  SHADOW_HELD,
  SHADOW_OUTSIDE,
  SHADOW_RESERVED,
} from "./_frame_shadow.ts";

function shadow(): FrameShadow {
  // Frames 2..9 and 12..15 usable; 4 and 5 reserved inside them.
  return new FrameShadow(20, [{ firstFrame: 2, endFrame: 4 }, { firstFrame: 6, endFrame: 10 }, {
    firstFrame: 12,
    endFrame: 16,
  }], [{ firstFrame: 4, endFrame: 6 }]);
}

Deno.test("FrameShadow knows which frames are free, reserved and outside", () => {
  const model = shadow();
  assertEquals([0, 2, 4, 10, 15, 25].map((frame) => model.stateOf(frame)), [
    SHADOW_OUTSIDE,
    SHADOW_FREE,
    SHADOW_RESERVED,
    SHADOW_OUTSIDE,
    SHADOW_FREE,
    SHADOW_OUTSIDE,
  ]);
  assertEquals([model.freeCount, model.available.length], [10, 10]);
});

Deno.test("FrameShadow.take() tells a free frame from one held twice and a stray", () => {
  const model = shadow();
  assertEquals(model.take(2), "taken");
  assertEquals(model.take(2), "twice");
  assertEquals(model.take(4), "stray");
  assertEquals(model.take(4), "twice");
  assertEquals([model.stateOf(2), model.kindOf(2), model.kindOf(4)], [
    SHADOW_HELD,
    SHADOW_FREE,
    SHADOW_RESERVED,
  ]);
  assertEquals([model.heldCount, model.handedOutCount, model.heldFrames()], [1, 2, [2, 4]]);
  model.release(4);
  model.release(2);
  assertEquals([model.stateOf(4), model.stateOf(2), model.freeCount], [
    SHADOW_RESERVED,
    SHADOW_FREE,
    10,
  ]);
});

Deno.test("FrameShadow.lowestFree() and hasRun() follow what the grader holds", () => {
  const model = shadow();
  assertEquals(model.lowestFree(), 2);
  model.take(2);
  model.take(3);
  assertEquals(model.lowestFree(), 6);
  assertEquals([model.hasRun(4, 1), model.hasRun(4, 4), model.hasRun(4, 8), model.hasRun(5, 1)], [
    true,
    true,
    false,
    false,
  ]);
  model.release(2);
  assertEquals(model.lowestFree(), 2);
});
