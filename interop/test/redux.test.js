"use strict";
// The seed article's use case: every browser keeps a Redux store of a topic's counts, fed by
// presence_state and presence_diff. With anonymous viewers, several users and two tabs of one
// user, on both client versions at once, every store shows the true counts as people come
// and go.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { CLIENTS, startServer, connect, waitUntil, joinPromise, userToken } = require("../lib/harness");
const { watchTopic, countsOf } = require("../lib/presence-store");

describe("redux counts", () => {
  let server;
  const sockets = [];
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    sockets.forEach((s) => s.disconnect());
    await server.stop();
  });

  it("shows the right counts in every store", async () => {
    const topic = "video:42";
    const people = [
      { who: "anon-1" },
      { who: "anon-2" },
      { who: "anon-3" },
      { who: "alice-tab-1", user: "alice" },
      { who: "alice-tab-2", user: "alice" },
      { who: "bob", user: "bob" },
    ];
    const clients = [];
    for (const [i, p] of people.entries()) {
      const [, lib] = CLIENTS[i % CLIENTS.length];
      const socket = connect(lib, server, p.user ? { params: { token: userToken(p.user) } } : {});
      sockets.push(socket);
      const w = watchTopic(socket, topic);
      await joinPromise(w.channel);
      clients.push({ ...p, socket, watched: w }); // watched.states keeps counting
    }
    const everyoneSees = (viewers, users, label) =>
      waitUntil(
        () => clients.filter((c) => !c.gone).every((c) => {
          const got = countsOf(c.watched.store);
          return got.viewers === viewers && got.users === users;
        }),
        label
      );

    await everyoneSees(3, 2, "3 viewers and 2 users (alice's two tabs count once)");
    for (const c of clients) assert.equal(c.watched.states, 1, c.who + " got one presence_state");

    const gone = (who) => {
      const c = clients.find((x) => x.who === who);
      c.gone = true;
      c.socket.disconnect();
    };
    gone("alice-tab-1");
    // alice is still there in her second tab: once the server has dropped the first tab,
    // she is still counted, by the server and in every store
    await waitUntil(async () => (await server.counts(topic)).connections.count === 5, "first tab untracked");
    assert.equal((await server.counts(topic)).users.count, 2);
    await everyoneSees(3, 2, "alice still counted");

    gone("alice-tab-2");
    await everyoneSees(3, 1, "alice gone");
    gone("anon-2");
    await everyoneSees(2, 1, "one viewer gone");

    // a latecomer starts from presence_state and agrees with everyone
    const late = watchTopic(connect(CLIENTS[0][1], server), topic);
    sockets.push(late.channel.socket);
    await joinPromise(late.channel);
    clients.push({ who: "late", watched: late });
    await everyoneSees(3, 1, "the latecomer counted everywhere");
  });
});
