"use strict";
// Test harness: builds and starts the interop gateway (interop/server), mints tokens, and
// connects the official phoenix clients over the `ws` transport (Node 20 has no global
// WebSocket).

const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");
const { WebSocket } = require("ws");

const SECRET = "interop-secret-" + crypto.randomBytes(8).toString("hex");

// Both client versions under test: the current one and 1.8.12 (through an npm alias).
const CLIENTS = [
  ["phoenix 1.8.16", require("phoenix")],
  ["phoenix 1.8.12", require("phoenix-1812")],
];

let builtServer = null;

// serverBinary returns the test server, built once per process with `go build` unless
// HEADCOUNT_INTEROP_SERVER names a prebuilt one (run.sh builds it once for all files).
function serverBinary() {
  if (process.env.HEADCOUNT_INTEROP_SERVER) return process.env.HEADCOUNT_INTEROP_SERVER;
  if (builtServer) return builtServer;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "headcount-interop-"));
  builtServer = path.join(dir, "server");
  execFileSync("go", ["build", "-o", builtServer, "./interop/server"], {
    cwd: path.join(__dirname, "..", ".."),
    stdio: ["ignore", "inherit", "inherit"],
  });
  return builtServer;
}

// startServer launches a gateway on 127.0.0.1 and resolves once it prints its URL.
async function startServer(args = []) {
  const proc = spawn(serverBinary(), ["-secret", SECRET, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  const url = await new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: proc.stdout });
    const timer = setTimeout(() => reject(new Error("server did not start")), 30000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    proc.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    url,
    socketURL: url.replace(/^http/, "ws") + "/socket",
    // restart makes the server close every socket (1001) and serve a fresh gateway.
    async restart() {
      const res = await fetch(url + "/test/restart", { method: "POST" });
      if (!res.ok) throw new Error(`restart: ${res.status}`);
    },
    async counts(topic) {
      const res = await fetch(url + "/v1/topics/" + encodeURIComponent(topic));
      return res.json();
    },
    async stop() {
      proc.stdin.end();
      await exited;
    },
  };
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

// jwt signs claims with HS256 (or alg "none" when secret is null).
function jwt(claims, secret = SECRET, alg = "HS256") {
  const head = b64url(JSON.stringify({ alg, typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  if (alg === "none") return `${head}.${body}.`;
  const sig = crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

const now = () => Math.floor(Date.now() / 1000);
const userToken = (sub, ttl = 3600) => jwt({ sub, exp: now() + ttl });

// connect opens a phoenix Socket with fast retry timers so the tests run quickly.
function connect(lib, server, opts = {}) {
  const socket = new lib.Socket(server.socketURL, {
    transport: WebSocket,
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
    ...opts,
  });
  socket.connect();
  return socket;
}

// waitUntil polls cond until it is true, failing after timeoutMs.
async function waitUntil(cond, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// joinPromise resolves with the join reply, or rejects on error / timeout.
function joinPromise(channel) {
  return new Promise((resolve, reject) => {
    channel
      .join()
      .receive("ok", resolve)
      .receive("error", (e) => reject(new Error("join error: " + JSON.stringify(e))))
      .receive("timeout", () => reject(new Error("join timeout")));
  });
}

// upgradeStatus dials the socket endpoint with a bare `ws` client and resolves with the HTTP
// status of a refused upgrade, or 101 when it is accepted.
function upgradeStatus(server, query, protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.socketURL}/websocket?${query}`, protocols);
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode);
      ws.terminate();
    });
    ws.on("open", () => {
      resolve(101);
      ws.close();
    });
    ws.on("error", (e) => reject(e));
  });
}

// useServer starts a gateway before the enclosing describe block's tests and stops it, with
// every socket opened through open(), after them. ctx.server is the running server.
function useServer(lib, args) {
  const { before, after } = require("node:test");
  const sockets = [];
  const ctx = {
    server: null,
    open(opts) {
      const s = connect(lib, ctx.server, opts);
      sockets.push(s);
      return s;
    },
  };
  before(async () => {
    ctx.server = await startServer(args);
  });
  after(async () => {
    sockets.forEach((s) => s.disconnect());
    await ctx.server.stop();
  });
  return ctx;
}

module.exports = { SECRET, CLIENTS, startServer, useServer, jwt, now, userToken, connect, waitUntil, joinPromise, upgradeStatus };
