"use strict";
// Identity and access with the official phoenix client: an RS256 token whose key comes from
// a JWKS (served here, as an identity provider would) counts as a user; a socket whose
// token expires is closed with 4001 and comes back with a fresh token from a `params`
// function; a join the topic rules refuse gets {"reason":"unauthorized"} and counts no one.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const http = require("node:http");
const { CLIENTS, startServer, connect, waitUntil, joinPromise, jwt, now } = require("../lib/harness");
const { watchTopic, countsOf } = require("../lib/presence-store");

const b64url = (s) => Buffer.from(s).toString("base64url");

// An identity provider: an RSA key pair, its JWKS at /jwks, RS256 tokens signed with kid k1.
function identityProvider() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid: "k1", alg: "RS256", use: "sig" }] });
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(jwks);
  });
  return {
    publicPEM: publicKey.export({ type: "spki", format: "pem" }),
    async start() {
      await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${srv.address().port}/jwks`;
    },
    stop: () => new Promise((resolve) => srv.close(resolve)),
    sign(claims) {
      const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: "k1" }));
      const body = b64url(JSON.stringify(claims));
      const sig = crypto.sign("sha256", Buffer.from(`${head}.${body}`), privateKey).toString("base64url");
      return `${head}.${body}.${sig}`;
    },
  };
}

for (const [name, lib] of CLIENTS) {
  describe(name + " identity and access", () => {
    const idp = identityProvider();
    let server;
    const sockets = [];
    const open = (opts) => {
      const s = connect(lib, server, opts);
      sockets.push(s);
      return s;
    };
    before(async () => {
      const jwksURL = await idp.start();
      server = await startServer(["-jwks-url", jwksURL, "-public-topics", "lobby:*"]);
    });
    after(async () => {
      sockets.forEach((s) => s.disconnect());
      await server.stop();
      await idp.stop();
    });

    it("counts an RS256 token from a JWKS as a user", async () => {
      const token = idp.sign({ sub: "rita", exp: now() + 3600 });
      const w = watchTopic(open({ params: { token } }), "lobby:rsa");
      await joinPromise(w.channel);
      await waitUntil(() => w.states === 1, "presence_state");
      assert.deepEqual(countsOf(w.store), { viewers: 0, users: 1 });
      assert.deepEqual((await server.counts("lobby:rsa")).users, { count: 1 });
    });

    it("closes an expired socket with 4001 and reconnects with a fresh token from a params function", async () => {
      let minted = 0;
      // The first token lives 2-3 s; every reconnect asks for a new one, as a page would ask its backend.
      const params = () => ({ token: idp.sign({ sub: "eli", exp: now() + (minted++ === 0 ? 3 : 3600) }) });
      const socket = open({ params });
      const closes = [];
      socket.onClose((e) => closes.push([e.code, e.reason]));
      const w = watchTopic(socket, "lobby:expiry");
      await joinPromise(w.channel);
      await waitUntil(() => w.states === 1, "presence_state");
      assert.deepEqual(countsOf(w.store), { viewers: 0, users: 1 });

      await waitUntil(() => closes.length > 0, "the expiry close", 10000);
      assert.deepEqual(closes[0], [4001, "token expired"]);
      // Back with the fresh token: rejoined, state pushed again, counted once.
      await waitUntil(() => w.states >= 2 && socket.isConnected(), "the rejoin after the reconnect");
      assert.ok(minted >= 2, "params was called again for the reconnect");
      await waitUntil(async () => (await server.counts("lobby:expiry")).users.count === 1, "counted once");
      assert.deepEqual(countsOf(w.store), { viewers: 0, users: 1 });
      assert.equal(closes.length, 1, "the fresh token keeps the socket open");
    });

    it("refuses a join outside the public topics with {reason: unauthorized}", async () => {
      const socket = open({});
      const channel = socket.channel("private:1", {});
      const reply = await new Promise((resolve, reject) => {
        channel
          .join()
          .receive("ok", () => reject(new Error("join should have been refused")))
          .receive("error", resolve)
          .receive("timeout", () => reject(new Error("join timeout")));
      });
      assert.deepEqual(reply, { reason: "unauthorized" });
      channel.leave();
      const reader = { headers: { Authorization: "Bearer " + idp.sign({ sub: "x", exp: now() + 60, topics: ["*"] }) } };
      const counts = await (await fetch(server.url + "/v1/topics/private:1", reader)).json();
      assert.deepEqual(counts.viewers, { count: 0 }, "the refused join counted no one");

      // A token whose topics claim names it may join; the public topics no longer apply to it.
      const token = idp.sign({ sub: "pia", exp: now() + 3600, topics: ["private:*"] });
      const member = open({ params: { token } });
      const w = watchTopic(member, "private:1");
      await joinPromise(w.channel);
      await waitUntil(() => w.states === 1, "presence_state");
      assert.deepEqual(countsOf(w.store), { viewers: 0, users: 1 });
      const lobby = member.channel("lobby:x", {});
      const refused = await new Promise((resolve) => lobby.join().receive("error", resolve));
      assert.deepEqual(refused, { reason: "unauthorized" });
      lobby.leave();
    });

    it("guards HTTP reads with the same rules (403)", async () => {
      const res = await fetch(server.url + "/v1/topics/private:1");
      assert.equal(res.status, 403);
      const ok = await fetch(server.url + "/v1/topics/private:1", {
        headers: { Authorization: "Bearer " + idp.sign({ sub: "r", exp: now() + 60, topics: ["private:*"] }) },
      });
      assert.equal(ok.status, 200);
      // An HS256 token "signed" with the provider's public key as the secret is refused
      // (algorithm confusion).
      const confused = jwt({ sub: "m", exp: now() + 60, topics: ["*"] }, idp.publicPEM);
      assert.equal((await fetch(server.url + "/v1/topics/private:1?token=" + confused)).status, 403);
    });
  });
}
