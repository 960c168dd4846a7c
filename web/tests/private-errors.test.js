// Matching private-send errors to sent messages (js/private-errors.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { PRIVATE_FAILURE_WINDOW_MS, PrivateSends } from "../js/private-errors.js";
import { FakeClock } from "./helpers.js";

const privateError = (code = "UNKNOWN_RECIPIENT") => ({
  type: "error",
  code,
  message: "x",
  action: "sendPrivate",
});

function makeSends() {
  const clock = new FakeClock();
  return { sends: new PrivateSends({ now: clock.now }), clock };
}

describe("PrivateSends", () => {
  it("blames a sendPrivate error on the most recent private message", () => {
    const { sends, clock } = makeSends();
    sends.record("to Bob", { to: "Bob" });
    clock.advance(100);
    sends.record("to Zoe", { to: "Zoe" });
    assert.equal(sends.failed(privateError()), "to Zoe");
  });

  it("matches each sent message at most once, newest first", () => {
    const { sends } = makeSends();
    sends.record("first");
    sends.record("second");
    assert.equal(sends.failed(privateError()), "second");
    assert.equal(sends.failed(privateError()), "first");
    assert.equal(sends.failed(privateError()), null);
  });

  it("ignores errors for other actions", () => {
    const { sends } = makeSends();
    sends.record("to Bob");
    for (const action of ["sendPublic", "setName", null, undefined]) {
      assert.equal(sends.failed({ ...privateError(), action }), null, String(action));
    }
    assert.equal(sends.failed(null), null);
    assert.equal(sends.failed(privateError()), "to Bob", "still there for its own error");
  });

  it("never blames a message older than the window", () => {
    const { sends, clock } = makeSends();
    sends.record("old");
    clock.advance(PRIVATE_FAILURE_WINDOW_MS - 1);
    sends.record("recent");
    clock.advance(1);
    assert.equal(sends.failed(privateError()), "recent");
    assert.equal(sends.failed(privateError()), null, "'old' is exactly 30 s old");
    assert.equal(PRIVATE_FAILURE_WINDOW_MS, 30_000);
  });

  it("forgets everything when the connection closes", () => {
    const { sends } = makeSends();
    sends.record("to Bob");
    sends.clear();
    assert.equal(sends.failed(privateError()), null);
  });
});
