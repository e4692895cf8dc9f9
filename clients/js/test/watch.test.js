import { describe, it, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { watch, applyState, applyDiff, INITIAL_COUNTS } from "../index.js";
import { FakeGateway, waitFor } from "./fake-gateway.js";

describe("watch", () => {
  let gw, socket;
  beforeEach(() => {
    gw = new FakeGateway();
    socket = gw.connect();
  });
  afterEach(() => socket.disconnect());

  it("follows presence_state then presence_diff, and leaves on stop", async () => {
    gw.setCounts("video:1", { viewers: 3, users: 2 });
    const seen = [];
    const w = watch("video:1", { socket, onChange: (c) => seen.push(c) });
    assert.deepEqual(w.counts, INITIAL_COUNTS);
    await waitFor(() => w.counts.ready, "presence_state");
    assert.deepEqual(gw.joinsOf("video:1").map((f) => f.payload), [{}], "a tracked join");
    assert.equal(w.counts.viewers, 3);
    assert.equal(w.counts.users, 2);

    gw.setCounts("video:1", { viewers: 1, users: 4 });
    await waitFor(() => w.counts.viewers === 1, "a diff");
    assert.equal(w.counts.users, 4);
    assert.ok(Object.isFrozen(w.counts));
    assert.deepEqual(
      seen.map((c) => [c.viewers, c.users]),
      [
        [3, 2],
        [1, 4],
      ]
    );

    w.stop();
    await waitFor(() => gw.leavesOf("video:1").length === 1, "phx_leave");
    gw.setCounts("video:1", { viewers: 9 });
    const after = watch("video:2", { socket }); // frames arrive in order: this state comes later
    await waitFor(() => after.counts.ready, "a later frame");
    assert.equal(seen.length, 2, "nothing after stop");
    after.stop();
  });

  it("joins as an observer with {observe: true}, with extra params", async () => {
    gw.setCounts("video:*", { viewers: 10, users: 5, connections: 17 });
    const w = watch("video:*", { socket, observe: true, params: { connections: true } });
    await waitFor(() => w.counts.ready, "presence_state");
    assert.deepEqual(gw.joinsOf("video:*")[0].payload, { connections: true, observe: true });
    assert.equal(w.counts.connections, 17);
    gw.setCounts("video:*", { viewers: 10, users: 5, connections: 18 });
    await waitFor(() => w.counts.connections === 18, "connections diff");
    w.stop();
  });

  it("shares one channel per topic and socket, and leaves when the last watcher stops", async () => {
    const a = watch("room:1", { socket, observe: true });
    const b = watch("room:1", { socket, observe: true });
    await waitFor(() => a.counts.ready && b.counts.ready, "both ready");
    assert.equal(gw.joinsOf("room:1").length, 1, "one join for two watchers");
    assert.throws(() => watch("room:1", { socket }), /other options/);
    a.stop();
    a.stop(); // idempotent
    gw.setCounts("room:1", { viewers: 2 });
    await waitFor(() => b.counts.viewers === 2, "b still follows");
    assert.equal(gw.leavesOf("room:1").length, 0);
    b.stop();
    await waitFor(() => gw.leavesOf("room:1").length === 1, "left after the last");
    const c = watch("room:1", { socket }); // a fresh channel, with other options now
    await waitFor(() => c.counts.ready, "a new watcher");
    c.stop();
  });

  it("reports a refused join", async () => {
    gw.refuse.set("video:*", "observe only");
    const w = watch("video:*", { socket });
    await waitFor(() => w.counts.error === "observe only", "the error");
    assert.equal(w.counts.ready, false);
    w.stop();
  });

  it("takes the counts of the rejoin after the server drops the connection", async () => {
    gw.setCounts("room:2", { viewers: 4 });
    const w = watch("room:2", { socket });
    await waitFor(() => w.counts.viewers === 4, "first state");
    const states = [];
    w.subscribe((c) => states.push(c.ready));
    gw.counts.set("room:2", { viewers: 7, users: 1, connections: 8 }); // changed while away
    gw.drop();
    await waitFor(() => w.counts.ready && w.counts.viewers === 7, "the rejoin's state");
    assert.equal(w.counts.users, 1);
    assert.deepEqual(states, [false, true], "stale while away, then fresh");
    assert.equal(gw.joinsOf("room:2").length, 2);
    w.stop();
  });

  it("needs a socket and a topic", () => {
    assert.throws(() => watch("room:1", {}), /socket/);
    assert.throws(() => watch("", { socket }), /topic/);
  });
});

describe("applyState and applyDiff", () => {
  it("add up to the truth, as the seed article's reducer does", () => {
    let c = applyState(INITIAL_COUNTS, { viewers: { count: 2 }, users: { count: 1 } });
    const truth = { viewers: 2, users: 1 };
    const steps = [
      [3, 0],
      [0, 2],
      [-4, 5],
      [1, -7],
    ];
    for (const [dv, du] of steps) {
      const joins = { viewers: { count: Math.max(0, dv) }, users: { count: Math.max(0, du) } };
      const leaves = { viewers: { count: Math.max(0, -dv) }, users: { count: Math.max(0, -du) } };
      truth.viewers += dv;
      truth.users += du;
      c = applyDiff(c, { joins, leaves });
      assert.deepEqual([c.viewers, c.users], [truth.viewers, truth.users]);
    }
  });

  it("ignore a diff before the first state and keep partial when sent", () => {
    const diff = { joins: { viewers: { count: 1 }, users: { count: 0 } }, leaves: { viewers: { count: 0 }, users: { count: 0 } } };
    assert.equal(applyDiff(INITIAL_COUNTS, diff), INITIAL_COUNTS);
    const s = applyState(INITIAL_COUNTS, { viewers: { count: 1 }, users: { count: 0 }, partial: true });
    assert.equal(s.partial, true);
    assert.equal(applyDiff(s, { ...diff, partial: false }).partial, false);
  });
});
