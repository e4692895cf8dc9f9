"use strict";
// The official phoenix client (1.8.16 and 1.8.12) against the gateway: join, presence_state,
// presence_diff, leave, heartbeat, reconnect after a server close, rejoin.

const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { CLIENTS, waitUntil, joinPromise, useServer } = require("../lib/harness");
const { watchTopic, countsOf } = require("../lib/presence-store");

for (const [name, lib] of CLIENTS) {
  describe(name, () => {
    const ctx = useServer(lib, ["-idle-timeout", "1500ms"]);
    const open = ctx.open;

    it("joins, gets presence_state, and leaves", async () => {
      const socket = open({ heartbeatIntervalMs: 300 });
      const w = watchTopic(socket, "chan:join");
      const reply = await joinPromise(w.channel);
      assert.deepEqual(reply, {});
      await waitUntil(() => w.states === 1, "presence_state");
      assert.deepEqual(countsOf(w.store), { viewers: 1, users: 0 });

      const left = await new Promise((resolve) => w.channel.leave().receive("ok", () => resolve("ok")));
      assert.equal(left, "ok");
      await waitUntil(async () => (await ctx.server.counts("chan:join")).viewers.count === 0, "untracked after leave");
    });

    it("sends presence_diff to others on join and leave", async () => {
      const a = watchTopic(open({ heartbeatIntervalMs: 300 }), "chan:diff");
      await joinPromise(a.channel);
      await waitUntil(() => countsOf(a.store).viewers === 1, "a counts itself");

      const b = watchTopic(open({ heartbeatIntervalMs: 300 }), "chan:diff");
      await joinPromise(b.channel);
      await waitUntil(() => countsOf(a.store).viewers === 2, "a sees b");
      await waitUntil(() => countsOf(b.store).viewers === 2, "b sees both");

      b.channel.leave();
      await waitUntil(() => countsOf(a.store).viewers === 1, "a sees b leave");
    });

    it("heartbeats keep an idle socket open past the server's idle timeout", async () => {
      const socket = open({ heartbeatIntervalMs: 200 });
      let replies = 0;
      let closes = 0;
      socket.onMessage((msg) => {
        if (msg.topic === "phoenix" && msg.event === "phx_reply" && msg.payload.status === "ok") replies++;
      });
      socket.onClose(() => closes++);
      await waitUntil(() => socket.isConnected(), "connected");
      // The server closes sockets silent for 1.5 s; wait for 3 s worth of heartbeats.
      await waitUntil(() => replies >= 12, "12 heartbeat replies");
      assert.equal(closes, 0);
      assert.ok(socket.isConnected());
    });

    it("reconnects after a server close and gets presence_state again on rejoin", async () => {
      const socket = open({ heartbeatIntervalMs: 300 });
      const codes = [];
      socket.onClose((e) => codes.push(e.code));
      const w = watchTopic(socket, "chan:restart");
      await joinPromise(w.channel);
      await waitUntil(() => w.states === 1, "first presence_state");

      await ctx.server.restart();
      await waitUntil(() => codes.length >= 1, "server close");
      assert.equal(codes[0], 1001);
      await waitUntil(() => w.states >= 2, "presence_state after the rejoin");
      await waitUntil(() => socket.isConnected(), "reconnected");
      assert.deepEqual(countsOf(w.store), { viewers: 1, users: 0 });
      const truth = await ctx.server.counts("chan:restart");
      assert.equal(truth.viewers.count, 1, "counted once after the rejoin");
    });
  });
}
