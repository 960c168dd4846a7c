// Frames the client does not know (js/unknown.js): reported once per kind.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { parseFrameText } from "../js/protocol.js";
import { MAX_KINDS, UnknownFrames } from "../js/unknown.js";

describe("UnknownFrames", () => {
  it("reports the first frame of each kind and stays quiet about the rest", () => {
    const u = new UnknownFrames();
    const lines = [];
    for (const text of ['{"typing":"Bob"}', '{"typing":"Eve"}', '{"poll":{}}', '{"typing":"Bob","ts":1}']) {
      for (const ev of parseFrameText(text)) {
        const line = u.report(ev);
        if (line !== null) lines.push(line);
      }
    }
    assert.equal(lines.length, 2);
    assert.match(lines[0], /keys: typing\)/);
    assert.match(lines[1], /keys: poll\)/);
  });

  it("is not a flood: after MAX_KINDS kinds, one last line and then nothing", () => {
    const u = new UnknownFrames();
    const lines = [];
    for (let i = 0; i < MAX_KINDS + 50; i += 1) {
      const line = u.report({ kind: `k${i}` });
      if (line !== null) lines.push(line);
    }
    assert.equal(lines.length, MAX_KINDS + 1);
    assert.match(lines.at(-1), /not reporting further kinds/);
    assert.equal(u.report({ kind: "k0" }), null);
  });
});
