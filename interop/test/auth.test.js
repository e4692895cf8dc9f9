"use strict";
// Tokens: the `token` param and the `authToken` subprotocol make a socket a user; forged,
// expired and alg-none tokens are refused with HTTP 403 at the upgrade, and the phoenix
// client never gets in with them.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { CLIENTS, startServer, waitUntil, joinPromise, jwt, now, userToken, upgradeStatus, useServer } = require("../lib/harness");
const { watchTopic, countsOf } = require("../lib/presence-store");

describe("upgrade", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  it("refuses bad tokens with 403", async () => {
    const forged = jwt({ sub: "mallory", exp: now() + 3600 }, "not-the-secret");
    const expired = jwt({ sub: "alice", exp: now() - 60 });
    const none = jwt({ sub: "alice", exp: now() + 3600 }, null, "none");
    assert.equal(await upgradeStatus(server, "vsn=2.0.0&token=" + forged), 403);
    assert.equal(await upgradeStatus(server, "vsn=2.0.0&token=" + expired), 403);
    assert.equal(await upgradeStatus(server, "vsn=2.0.0&token=" + none), 403);
    assert.equal(await upgradeStatus(server, "vsn=3.0.0"), 403);
    assert.equal(await upgradeStatus(server, "vsn=2.0.0&token=" + userToken("alice")), 101);
    assert.equal(await upgradeStatus(server, "vsn=2.0.0"), 101);
  });
});

for (const [name, lib] of CLIENTS) {
  describe(name + " auth", () => {
    const ctx = useServer(lib);
    const open = ctx.open;

    it("counts a token's sub as a user (token param)", async () => {
      const w = watchTopic(open({ params: { token: userToken("alice") } }), "auth:param");
      await joinPromise(w.channel);
      await waitUntil(() => w.states === 1, "presence_state");
      assert.deepEqual(countsOf(w.store), { viewers: 0, users: 1 });
    });

    it("counts a token's sub as a user (authToken subprotocol)", async () => {
      const w = watchTopic(open({ authToken: userToken("bob") }), "auth:subprotocol");
      await joinPromise(w.channel);
      await waitUntil(() => w.states === 1, "presence_state");
      assert.deepEqual(countsOf(w.store), { viewers: 0, users: 1 });
    });

    for (const [what, token] of [
      ["forged", () => jwt({ sub: "mallory", exp: now() + 3600 }, "not-the-secret")],
      ["expired", () => jwt({ sub: "alice", exp: now() - 60 })],
    ]) {
      it(`never lets a ${what} token in`, async () => {
        let errors = 0;
        let opened = 0;
        const socket = open({ params: { token: token() } });
        socket.onError(() => errors++);
        socket.onOpen(() => opened++);
        await waitUntil(() => errors >= 3, "three refused attempts");
        assert.equal(opened, 0);
        assert.equal(socket.isConnected(), false);
      });
    }
  });
}
