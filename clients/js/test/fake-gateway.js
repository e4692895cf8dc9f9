// A stand-in for a Headcount gateway behind the official phoenix client: a transport class
// (passed as the Socket's `transport`) whose frames are answered here as the gateway answers
// them (join reply then presence_state, diffs with both classes in both halves). The tests
// then drive the real phoenix Socket and Channel code.

import { Socket } from "phoenix";

export class FakeGateway {
  constructor() {
    this.transports = [];
    this.frames = []; // every frame the clients sent, decoded
    this.counts = new Map(); // topic -> {viewers, users, connections}
    this.channels = new Map(); // "transport#topic" -> {transport, joinRef, topic, params}
    this.refuse = new Map(); // topic -> reason, to refuse joins
    const gw = this;
    this.Transport = class {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        gw.transports.push(this);
        setTimeout(() => {
          if (this.readyState !== 0) return;
          this.readyState = 1;
          this.onopen && this.onopen();
        }, 0);
      }
      send(data) {
        gw.receive(this, JSON.parse(data));
      }
      close(code = 1000, reason = "") {
        if (this.readyState === 3) return;
        this.readyState = 3;
        gw.dropTransport(this);
        setTimeout(() => this.onclose && this.onclose({ code, reason, wasClean: true }), 0);
      }
    };
  }

  countsOf(topic) {
    return this.counts.get(topic) || { viewers: 0, users: 0, connections: 0 };
  }

  deliver(t, frame) {
    setTimeout(() => t.readyState === 1 && t.onmessage && t.onmessage({ data: JSON.stringify(frame) }), 0);
  }

  receive(t, [joinRef, ref, topic, event, payload]) {
    this.frames.push({ joinRef, ref, topic, event, payload });
    const reply = (status, response = {}) => this.deliver(t, [joinRef, ref, topic, "phx_reply", { status, response }]);
    const key = this.transports.indexOf(t) + "#" + topic;
    switch (event) {
      case "heartbeat":
        return reply("ok");
      case "phx_join": {
        if (this.refuse.has(topic)) return reply("error", { reason: this.refuse.get(topic) });
        this.channels.set(key, { transport: t, joinRef, topic, params: payload });
        reply("ok");
        return this.deliver(t, [joinRef, null, topic, "presence_state", this.view(this.countsOf(topic), payload)]);
      }
      case "phx_leave":
        this.channels.delete(key);
        reply("ok");
        return this.deliver(t, [joinRef, joinRef, topic, "phx_close", {}]);
      default:
        return reply("error", { reason: "unknown event" });
    }
  }

  view(c, params) {
    const v = { viewers: { count: c.viewers }, users: { count: c.users } };
    if (params && params.connections) v.connections = { count: c.connections };
    return v;
  }

  // setCounts changes a topic's counts and sends every joined channel the diff.
  setCounts(topic, next) {
    const prev = this.countsOf(topic);
    const now = { viewers: 0, users: 0, connections: 0, ...next };
    this.counts.set(topic, now);
    const joins = {};
    const leaves = {};
    for (const k of ["viewers", "users", "connections"]) {
      joins[k] = Math.max(0, now[k] - prev[k]);
      leaves[k] = Math.max(0, prev[k] - now[k]);
    }
    for (const ch of this.channels.values()) {
      if (ch.topic !== topic) continue;
      this.deliver(ch.transport, [
        null,
        null,
        topic,
        "presence_diff",
        { joins: this.view(joins, ch.params), leaves: this.view(leaves, ch.params) },
      ]);
    }
  }

  // drop closes every connection as a server restart would (code 1001: clients come back).
  drop() {
    for (const t of this.transports) {
      if (t.readyState !== 1) continue;
      t.readyState = 3;
      this.dropTransport(t);
      setTimeout(() => t.onclose && t.onclose({ code: 1001, reason: "going away", wasClean: true }), 0);
    }
  }

  dropTransport(t) {
    const i = this.transports.indexOf(t);
    for (const key of [...this.channels.keys()]) if (key.startsWith(i + "#")) this.channels.delete(key);
  }

  // connect returns a connected phoenix Socket over this gateway: no heartbeats during a
  // test, reconnects and rejoins after 1 ms.
  connect() {
    const socket = new Socket("ws://gateway.test/socket", {
      transport: this.Transport,
      heartbeatIntervalMs: 3_600_000,
      reconnectAfterMs: () => 1,
      rejoinAfterMs: () => 1,
    });
    socket.connect();
    return socket;
  }

  joinsOf(topic) {
    return this.frames.filter((f) => f.topic === topic && f.event === "phx_join");
  }

  leavesOf(topic) {
    return this.frames.filter((f) => f.topic === topic && f.event === "phx_leave");
  }
}

// waitFor retries cond on the event loop until it holds (bounded), for outcomes of timers the
// phoenix client sets itself.
export async function waitFor(cond, what, tries = 2000) {
  for (let i = 0; i < tries; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error("timed out waiting for " + what);
}
