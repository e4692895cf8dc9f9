"use strict";
// Observers ({"observe": true} join payload) with the seed article's Redux reducer, while
// tracked clients come and go: every observer store shows the true counts, and no observer
// is ever counted. Also through clients/js (watch, observe: true) and a roll-up topic
// (video:*, where alice on two videos is one user).

const path = require("node:path");
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { CLIENTS, waitUntil, joinPromise, useServer, userToken } = require("../lib/harness");
const { watchTopic, countsOf } = require("../lib/presence-store");

const [[name, lib]] = CLIENTS;

describe(`${name} observers`, () => {
  const ctx = useServer(lib, []);

  it("see the true counts while tracked clients come and go, and are never counted", async () => {
    const topic = "video:1";
    const { watch } = await import(path.join(__dirname, "..", "..", "clients", "js", "index.js"));
    // Three observers: two seed-style stores (on one socket and on another), one clients/js watch.
    const obsSocket = ctx.open({ heartbeatIntervalMs: 300 });
    const stores = [watchTopic(obsSocket, topic, { observe: true }), watchTopic(ctx.open(), topic, { observe: true })];
    for (const s of stores) assert.deepEqual(await joinPromise(s.channel), {});
    const js = watch(topic, { socket: ctx.open(), observe: true });
    await waitUntil(() => stores.every((s) => s.states === 1) && js.counts.ready, "presence_state for every observer");

    const truth = async () => {
      const c = await ctx.server.counts(topic);
      return { viewers: c.viewers.count, users: c.users.count };
    };
    const seenBy = () => [...stores.map((s) => countsOf(s.store)), { viewers: js.counts.viewers, users: js.counts.users }];
    const expectEverywhere = async (want, what) => {
      await waitUntil(async () => JSON.stringify(await truth()) === JSON.stringify(want), `server ${what}`);
      await waitUntil(() => seenBy().every((c) => c.viewers === want.viewers && c.users === want.users), `observers ${what}`);
    };
    await expectEverywhere({ viewers: 0, users: 0 }, "empty: observers count for nothing");

    // People come: anonymous viewers, alice in two tabs, bob.
    const people = [
      { token: null },
      { token: null },
      { token: userToken("alice") },
      { token: userToken("alice") },
      { token: userToken("bob") },
    ];
    const want = [
      { viewers: 1, users: 0 },
      { viewers: 2, users: 0 },
      { viewers: 2, users: 1 },
      { viewers: 2, users: 1 }, // alice's second tab is the same user
      { viewers: 2, users: 2 },
    ];
    const tracked = [];
    for (const [i, p] of people.entries()) {
      const socket = ctx.open(p.token ? { params: { token: p.token } } : {});
      const ch = socket.channel(topic, {});
      await joinPromise(ch);
      tracked.push({ socket, ch });
      await expectEverywhere(want[i], `after join ${i}`);
    }

    // And go, in another order: a leave, a closed socket, alice's first tab, then the rest.
    tracked[0].ch.leave();
    await expectEverywhere({ viewers: 1, users: 2 }, "after a leave");
    tracked[4].socket.disconnect();
    await expectEverywhere({ viewers: 1, users: 1 }, "after bob's socket closed");
    tracked[2].ch.leave();
    await expectEverywhere({ viewers: 1, users: 1 }, "alice still has a tab");
    tracked[3].ch.leave();
    tracked[1].ch.leave();
    await expectEverywhere({ viewers: 0, users: 0 }, "everyone gone");
    assert.ok(stores.every((s) => s.states === 1), "no observer had to rejoin");
    js.stop();
  });

  it("observe a roll-up: video:* counts distinct users over every video", async () => {
    const obs = watchTopic(ctx.open(), "video:*", { observe: true });
    await joinPromise(obs.channel);
    const refused = ctx.open().channel("video:*", {});
    const err = await joinPromise(refused).catch((e) => e.message);
    assert.match(String(err), /observe only/);
    refused.leave();

    const alice = ctx.open({ params: { token: userToken("alice") } });
    await joinPromise(alice.channel("video:10", {}));
    await joinPromise(alice.channel("video:11", {}));
    const anon = ctx.open();
    await joinPromise(anon.channel("video:11", {}));
    await waitUntil(() => {
      const c = countsOf(obs.store);
      return c.viewers === 1 && c.users === 1;
    }, "alice on two videos is one user, plus one viewer");
    anon.disconnect();
    alice.disconnect();
    await waitUntil(() => {
      const c = countsOf(obs.store);
      return c.viewers === 0 && c.users === 0;
    }, "everyone left");
  });
});
