"use strict";
// The official phoenix client over Phoenix's LongPoll transport (/socket/longpoll): with
// `transport: LongPoll`, and with `longPollFallbackMs` when a proxy refuses the WebSocket
// upgrade. Counts are checked with the seed-style Redux store, and against a WebSocket
// client in the same topic; a long-poll client that stops polling leaves the counts when its
// session times out.

const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const { CLIENTS, waitUntil, joinPromise, useServer, userToken } = require("../lib/harness");
const { watchTopic, countsOf } = require("../lib/presence-store");

const HOLD_MS = 300; // -longpoll-hold: polls answered 204 after this
const TIMEOUT_MS = 2000; // -longpoll-session-timeout (a loaded machine may pause a client's polls)

// blockingProxy forwards HTTP to target but refuses every WebSocket upgrade with 403, like a
// proxy that does not pass WebSockets. It resolves with {url, socketURL, refused(), close()}.
function blockingProxy(target) {
  const to = new URL(target);
  let refused = 0;
  const proxy = http.createServer((req, res) => {
    const up = http.request(
      { host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers },
      (ures) => {
        res.writeHead(ures.statusCode, ures.headers);
        ures.pipe(res);
      }
    );
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy()); // an aborted poll ends upstream too
    req.pipe(up);
  });
  proxy.on("upgrade", (_req, sock) => {
    refused++;
    sock.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  return new Promise((resolve) => {
    proxy.listen(0, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${proxy.address().port}`;
      resolve({
        url,
        socketURL: url.replace(/^http/, "ws") + "/socket",
        refused: () => refused,
        close: () =>
          new Promise((r) => {
            proxy.closeAllConnections();
            proxy.close(r);
          }),
      });
    });
  });
}

// The current client only: 1.8.12's fetch path never clears a request's 20 s abort timer,
// which keeps the finished test process alive for another ~20 s (measured: 32 s instead of
// 15 s for this file); its LongPoll passes the same tests.
const [[name, lib]] = CLIENTS;

describe(`${name} LongPoll`, () => {
  const ctx = useServer(lib, ["-longpoll-hold", `${HOLD_MS}ms`, "-longpoll-session-timeout", `${TIMEOUT_MS}ms`]);

  it("joins over LongPoll, counts with a WebSocket client, and keeps polling past the session timeout", async () => {
    const topic = "lp:counts";
    const ws = watchTopic(ctx.open({ heartbeatIntervalMs: 300 }), topic);
    await joinPromise(ws.channel);

    const socket = ctx.open({ transport: lib.LongPoll, params: { token: userToken("alice") } });
    const closes = [];
    socket.onClose((e) => closes.push(e.code));
    const lp = watchTopic(socket, topic);
    assert.deepEqual(await joinPromise(lp.channel), {});
    await waitUntil(() => lp.states === 1, "presence_state over LongPoll");
    assert.deepEqual(countsOf(lp.store), { viewers: 1, users: 1 });
    await waitUntil(() => countsOf(ws.store).users === 1, "the WebSocket client sees alice");

    // Several holds (each answered 204) and more than one session timeout go by.
    await new Promise((r) => setTimeout(r, 1.5 * TIMEOUT_MS));
    assert.deepEqual(closes, [], "the session stayed open");
    assert.equal((await ctx.server.counts(topic)).users.count, 1);

    // Another WebSocket client comes and goes; the long-poll store follows.
    const other = watchTopic(ctx.open({ heartbeatIntervalMs: 300 }), topic);
    await joinPromise(other.channel);
    await waitUntil(() => countsOf(lp.store).viewers === 2, "LongPoll store sees the newcomer");
    other.channel.leave();
    await waitUntil(() => countsOf(lp.store).viewers === 1, "LongPoll store sees it leave");

    // A clean leave over LongPoll (a POST) is seen at once.
    lp.channel.leave();
    await waitUntil(() => countsOf(ws.store).users === 0, "the WebSocket client sees alice leave");
  });

  it("leaves the counts when a long-poll client stops polling and its session times out", async () => {
    const topic = "lp:timeout";
    const ws = watchTopic(ctx.open({ heartbeatIntervalMs: 300 }), topic);
    await joinPromise(ws.channel);
    const socket = ctx.open({ transport: lib.LongPoll });
    const lp = watchTopic(socket, topic);
    await joinPromise(lp.channel);
    await waitUntil(() => countsOf(ws.store).viewers === 2, "both counted");

    // disconnect() aborts the poll and sends nothing: only the session timeout can tell.
    const stopped = Date.now();
    socket.disconnect();
    await waitUntil(() => countsOf(ws.store).viewers === 1, "the stopped client leaves");
    // The server times a session from the end of its last request, which may come a little
    // before disconnect() (the next poll can still be on its way); a clean close would be seen
    // within milliseconds, so half the timeout tells the two apart on a loaded machine.
    const waited = Date.now() - stopped;
    assert.ok(waited >= TIMEOUT_MS / 2, `left after ${waited} ms, long before the session timed out`);
    assert.equal((await ctx.server.counts(topic)).viewers.count, 1);
  });

  it("falls back to LongPoll when a proxy refuses the WebSocket (longPollFallbackMs)", async () => {
    const topic = "lp:fallback";
    const proxy = await blockingProxy(ctx.server.url);
    try {
      const ws = watchTopic(ctx.open({ heartbeatIntervalMs: 300 }), topic);
      await joinPromise(ws.channel);

      const socket = new lib.Socket(proxy.socketURL, {
        transport: require("ws").WebSocket,
        longPollFallbackMs: 2000,
        reconnectAfterMs: () => 50,
        rejoinAfterMs: () => 50,
        params: { token: userToken("bob") },
      });
      socket.connect();
      try {
        const lp = watchTopic(socket, topic);
        await joinPromise(lp.channel);
        await waitUntil(() => lp.states >= 1, "presence_state after the fallback");
        assert.equal(socket.transport, lib.LongPoll, "the socket fell back to LongPoll");
        assert.ok(proxy.refused() >= 1, "the WebSocket was tried first");
        assert.deepEqual(countsOf(lp.store), { viewers: 1, users: 1 });
        await waitUntil(() => countsOf(ws.store).users === 1, "the WebSocket client sees bob");
      } finally {
        socket.disconnect();
      }
    } finally {
      await proxy.close();
    }
  });
});
