import { describe, it, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createElement as h } from "react";
import TestRenderer from "react-test-renderer";
import { useHeadcount } from "../react.js";
import { FakeGateway } from "./fake-gateway.js";

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const { act, create } = TestRenderer;

// Counter renders what the seed article's component shows.
function Counter({ topic, socket, observe }) {
  const { viewers, users, ready } = useHeadcount(topic, { socket, observe });
  return h("span", null, ready ? `${users} users, ${viewers} viewers` : "…");
}

// until waits for cond, one event-loop turn at a time inside act, so React applies the
// updates the phoenix client's timers cause.
async function until(cond, what, tries = 2000) {
  for (let i = 0; i < tries; i++) {
    if (cond()) return;
    await act(() => new Promise((r) => setTimeout(r, 1)));
  }
  throw new Error("timed out waiting for " + what);
}

describe("useHeadcount", () => {
  let gw, socket;
  beforeEach(() => {
    gw = new FakeGateway();
    socket = gw.connect();
  });
  afterEach(() => socket.disconnect());

  it("renders live counts, switches topics and leaves on unmount", async () => {
    gw.setCounts("video:1", { viewers: 3, users: 1 });
    gw.setCounts("video:2", { viewers: 0, users: 8 });
    let root;
    await act(async () => {
      root = create(h(Counter, { topic: "video:1", socket, observe: true }));
    });
    const text = () => root.toJSON().children.join("");
    assert.equal(text(), "…");
    await until(() => gw.joinsOf("video:1").length === 1, "join");
    await until(() => text() === "1 users, 3 viewers", "first counts");
    assert.deepEqual(gw.joinsOf("video:1")[0].payload, { observe: true });

    await act(async () => gw.setCounts("video:1", { viewers: 5, users: 2 }));
    await until(() => text() === "2 users, 5 viewers", "a diff");

    await act(async () => root.update(h(Counter, { topic: "video:2", socket, observe: true })));
    await until(() => gw.leavesOf("video:1").length === 1, "left the old topic");
    await until(() => text() === "8 users, 0 viewers", "the new topic");

    await act(async () => root.unmount());
    await until(() => gw.leavesOf("video:2").length === 1, "left on unmount");
  });

  it("two components share one channel", async () => {
    let root;
    await act(async () => {
      root = create(
        h("div", null, h(Counter, { topic: "room:1", socket, key: "a" }), h(Counter, { topic: "room:1", socket, key: "b" }))
      );
    });
    await until(() => gw.channels.size === 1, "joined");
    await act(async () => gw.setCounts("room:1", { viewers: 2 }));
    const texts = () => root.toJSON().children.map((c) => c.children.join(""));
    await until(() => texts().every((t) => t === "0 users, 2 viewers"), "both updated");
    assert.equal(gw.joinsOf("room:1").length, 1);
    await act(async () => root.unmount());
    await until(() => gw.leavesOf("room:1").length === 1, "left once");
  });
});
