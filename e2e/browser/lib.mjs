// Helpers shared by the browser test and the screenshot script: start
// `headcount demo` on free loopback ports and launch Debian's Chromium.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// binary is the headcount binary to run (run.sh builds it).
export function binary() {
  const bin = process.env.HEADCOUNT_BIN;
  if (!bin) throw new Error('set HEADCOUNT_BIN to a built headcount binary (run.sh does)');
  return bin;
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// freePorts finds n consecutive free loopback TCP ports, below Linux's
// ephemeral range so that other programs' outgoing connections cannot take them.
export async function freePorts(n) {
  for (let tries = 0; tries < 1000; tries++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free consecutive ports');
}

// startDemo runs `headcount demo` and resolves with its node URLs once printed.
export async function startDemo(nodes, timeoutMs = 30000) {
  const base = await freePorts(nodes);
  const proc = spawn(binary(), ['demo', '--nodes', String(nodes), '--http-base', `127.0.0.1:${base}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const urls = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not print its URLs in ${timeoutMs} ms:\n${out}\n${err}`)), timeoutMs);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`demo exited with ${code}:\n${out}\n${err}`)); });
    proc.stdout.on('data', (d) => {
      out += d;
      const found = [...out.matchAll(/^node-\d+\s+(http:\/\/\S+)$/gm)].map((m) => m[1]);
      if (found.length === nodes) { clearTimeout(timer); resolve(found); }
    });
  });
  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    proc.removeAllListeners('exit');
    proc.once('exit', (code) => resolve(code));
    proc.kill('SIGTERM');
  });
  return { urls, stop, logs: () => err };
}

// launch starts headless Chromium with a fresh profile directory.
export async function launch() {
  const dir = mkdtempSync(join(tmpdir(), 'headcount-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => { await context.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

// startAgent runs one `headcount agent` on the given loopback ports and
// resolves once its /readyz answers 200.
export async function startAgent({ name, gossip, http, join = [], extra = [] }, timeoutMs = 30000) {
  const args = ['agent', '--name', name, '--bind', `127.0.0.1:${gossip}`, '--http', `127.0.0.1:${http}`,
    '--profile', 'local', '--demo-tokens', ...join.flatMap((j) => ['--join', j]), ...extra];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HEADCOUNT_')));
  const proc = spawn(binary(), args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${http}/`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}:\n${log}`);
    try {
      const resp = await fetch(url + 'readyz');
      if (resp.status === 200) break;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`${name} not ready in ${timeoutMs} ms:\n${log}`); }
    await new Promise((r) => setTimeout(r, 50)); // poll interval
  }
  return {
    url,
    logs: () => log,
    exited,
    stop: (signal = 'SIGTERM') => { if (proc.exitCode === null) proc.kill(signal); return exited; },
  };
}
