// A small Phoenix Channels V2 client over a plain WebSocket: connect,
// heartbeat, join/leave channels, route replies and pushes, and reconnect
// with backoff. It speaks the same frames as the official phoenix client:
// [join_ref, ref, topic, event, payload].
"use strict";

(function (global) {
  const HEARTBEAT_MS = 30000;
  const RECONNECT_MS = [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000];
  const REJOIN_MS = [1000, 2000, 5000, 10000];
  const PUSH_TIMEOUT_MS = 10000;

  // Channel is one joined topic. Listeners registered with on(event, fn)
  // receive the payload of pushes for the channel's current join only.
  class Channel {
    constructor(socket, topic, params) {
      this.socket = socket;
      this.topic = topic;
      this.params = params || {};
      this.state = "closed"; // closed | joining | joined | errored | leaving
      this.joinRef = null;
      this.listeners = new Map();
      this.rejoinTries = 0;
      this.rejoinTimer = null;
      this.joinTimer = null;
    }

    on(event, fn) {
      if (!this.listeners.has(event)) this.listeners.set(event, []);
      this.listeners.get(event).push(fn);
      return this;
    }

    emit(event, payload) {
      for (const fn of this.listeners.get(event) || []) fn(payload);
    }

    join() {
      clearTimeout(this.rejoinTimer);
      if (!this.socket.isOpen()) { this.state = "errored"; return; }
      this.state = "joining";
      const ref = this.socket.makeRef();
      this.joinRef = ref;
      this.socket.send([ref, ref, this.topic, "phx_join", this.params]);
      this.socket.expect(ref, (status, response) => this.onJoinReply(ref, status, response));
      clearTimeout(this.joinTimer);
      this.joinTimer = setTimeout(() => {
        if (this.joinRef === ref && this.state === "joining") this.onJoinReply(ref, "timeout", {});
      }, PUSH_TIMEOUT_MS);
    }

    onJoinReply(ref, status, response) {
      if (ref !== this.joinRef || this.state !== "joining") return;
      clearTimeout(this.joinTimer);
      if (status === "ok") {
        this.state = "joined";
        this.rejoinTries = 0;
        this.emit("join", response);
        return;
      }
      this.state = "errored";
      this.emit("error", response);
      this.scheduleRejoin();
    }

    scheduleRejoin() {
      clearTimeout(this.rejoinTimer);
      const wait = REJOIN_MS[Math.min(this.rejoinTries, REJOIN_MS.length - 1)];
      this.rejoinTries++;
      this.rejoinTimer = setTimeout(() => {
        if (this.state === "errored" && this.socket.isOpen()) this.join();
      }, wait);
    }

    leave() {
      clearTimeout(this.rejoinTimer);
      clearTimeout(this.joinTimer);
      if (this.socket.isOpen() && (this.state === "joined" || this.state === "joining")) {
        this.socket.send([this.joinRef, this.socket.makeRef(), this.topic, "phx_leave", {}]);
      }
      this.state = "closed";
      this.joinRef = null;
      this.socket.remove(this);
    }

    // deliver routes a server frame addressed to this channel.
    deliver(joinRef, event, payload) {
      if (joinRef !== null && joinRef !== this.joinRef) return; // a stale join
      if (event === "phx_error") {
        if (this.state === "closed") return;
        this.state = "errored";
        this.emit("error", payload);
        this.scheduleRejoin();
        return;
      }
      if (event === "phx_close") {
        this.state = "closed";
        this.emit("close", payload);
        return;
      }
      this.emit(event, payload);
    }
  }

  // Socket is one WebSocket to /socket/websocket with its channels.
  class Socket {
    // url: ws(s)://host/socket/websocket; params(): query parameters, re-read on every connect.
    constructor(url, params) {
      this.url = url;
      this.params = params || (() => ({}));
      this.ws = null;
      this.ref = 0;
      this.channels = [];
      this.replies = new Map();
      this.heartbeatTimer = null;
      this.pendingHeartbeat = null;
      this.reconnectTries = 0;
      this.reconnectTimer = null;
      this.wanted = false;
      this.listeners = new Map();
    }

    on(event, fn) {
      if (!this.listeners.has(event)) this.listeners.set(event, []);
      this.listeners.get(event).push(fn);
      return this;
    }

    emit(event, arg) {
      for (const fn of this.listeners.get(event) || []) fn(arg);
    }

    makeRef() { this.ref += 1; return String(this.ref); }
    isOpen() { return this.ws !== null && this.ws.readyState === WebSocket.OPEN; }

    endpoint() {
      const q = new URLSearchParams(this.params());
      q.set("vsn", "2.0.0");
      return this.url + "?" + q.toString();
    }

    connect() {
      this.wanted = true;
      clearTimeout(this.reconnectTimer);
      if (this.ws) return;
      this.emit("state", "connecting");
      const ws = new WebSocket(this.endpoint());
      this.ws = ws;
      ws.onopen = () => {
        if (this.ws !== ws) return;
        this.reconnectTries = 0;
        this.emit("state", "open");
        this.startHeartbeat();
        for (const ch of this.channels) if (ch.state !== "closed") ch.join();
      };
      ws.onmessage = (ev) => { if (this.ws === ws) this.onFrame(ev.data); };
      ws.onclose = (ev) => { if (this.ws === ws) this.onClose(ev); };
      ws.onerror = () => { /* onclose follows */ };
    }

    // disconnect closes the socket and stops reconnecting; connect() resumes.
    disconnect() {
      this.wanted = false;
      clearTimeout(this.reconnectTimer);
      this.drop(1000, "client disconnect");
      this.emit("state", "closed");
    }

    drop(code, reason) {
      this.stopHeartbeat();
      const ws = this.ws;
      this.ws = null;
      this.replies.clear();
      for (const ch of this.channels) if (ch.state !== "closed") ch.state = "errored";
      if (ws) { try { ws.close(code, reason); } catch (_) { /* already closing */ } }
    }

    onClose(ev) {
      this.drop();
      this.emit("close", ev);
      if (!this.wanted) return;
      const wait = RECONNECT_MS[Math.min(this.reconnectTries, RECONNECT_MS.length - 1)];
      this.reconnectTries++;
      this.emit("state", "reconnecting");
      this.reconnectTimer = setTimeout(() => this.connect(), wait);
    }

    startHeartbeat() {
      this.stopHeartbeat();
      this.heartbeatTimer = setInterval(() => {
        if (this.pendingHeartbeat !== null) {
          // The last heartbeat was never answered: the link is dead.
          this.pendingHeartbeat = null;
          const ws = this.ws;
          if (ws) { ws.close(1000, "heartbeat timeout"); this.onClose({ code: 1000, reason: "heartbeat timeout" }); }
          return;
        }
        const ref = this.makeRef();
        this.pendingHeartbeat = ref;
        this.send([null, ref, "phoenix", "heartbeat", {}]);
        this.expect(ref, () => { if (this.pendingHeartbeat === ref) this.pendingHeartbeat = null; });
      }, HEARTBEAT_MS);
    }

    stopHeartbeat() {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
      this.pendingHeartbeat = null;
    }

    send(frame) {
      if (!this.isOpen()) return false;
      this.ws.send(JSON.stringify(frame));
      this.emit("out", frame);
      return true;
    }

    expect(ref, fn) { this.replies.set(ref, fn); }

    channel(topic, params) {
      const ch = new Channel(this, topic, params);
      this.channels.push(ch);
      return ch;
    }

    remove(ch) { this.channels = this.channels.filter((c) => c !== ch); }

    onFrame(data) {
      let frame;
      try { frame = JSON.parse(data); } catch (_) { return; }
      if (!Array.isArray(frame) || frame.length !== 5) return;
      const [joinRef, ref, topic, event, payload] = frame;
      this.emit("in", frame);
      if (event === "phx_reply" && ref !== null && this.replies.has(ref)) {
        const fn = this.replies.get(ref);
        this.replies.delete(ref);
        fn(payload && payload.status, payload && payload.response);
        return;
      }
      for (const ch of this.channels) {
        if (ch.topic === topic) ch.deliver(joinRef, event, payload);
      }
    }
  }

  global.PhoenixSocket = Socket;
})(window);
