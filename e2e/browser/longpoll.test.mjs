// The official phoenix client's LongPoll transport in Chromium (XMLHttpRequest, not fetch):
// a page on the agent's own origin and a page on another origin allowed by
// --allowed-origins (CORS preflight for the ndjson POSTs) count each other; a page on an
// origin that is not allowed is refused and counts for nobody.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { freePorts, startAgent, launch } from './lib.mjs';

const WAIT = { timeout: 30000 };
const TOPIC = 'browser:longpoll';
// The client's browser build (an IIFE defining window.Phoenix), from this package's node_modules.
const phoenixJS = fileURLToPath(new URL('./node_modules/phoenix/priv/static/phoenix.js', import.meta.url));
let browser;
let agent;
const servers = [];

// blankSite serves an empty page on port, an origin of its own.
function blankSite(port) {
  const srv = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>other origin</title>');
  });
  servers.push(srv);
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(`http://127.0.0.1:${port}`)));
}

before(async () => { browser = await launch(); });
after(async () => {
  if (browser) await browser.close();
  if (agent) await agent.stop('SIGKILL');
  servers.forEach((s) => { s.closeAllConnections(); s.close(); });
});

// openLongPoll loads the official client into page and joins TOPIC over LongPoll; the page
// keeps the counts it is told in window.counts and transport errors in window.errors.
async function openLongPoll(page, socketURL) {
  await page.addScriptTag({ path: phoenixJS });
  await page.evaluate((url) => {
    window.counts = null;
    window.errors = [];
    const socket = new window.Phoenix.Socket(url, { transport: window.Phoenix.LongPoll, reconnectAfterMs: () => 200 });
    socket.onError((e) => window.errors.push(String(e)));
    socket.connect();
    const channel = socket.channel('browser:longpoll', {});
    channel.on('presence_state', (p) => { window.counts = { viewers: p.viewers.count, users: p.users.count }; });
    channel.on('presence_diff', ({ joins, leaves }) => {
      window.counts = {
        viewers: window.counts.viewers + joins.viewers.count - leaves.viewers.count,
        users: window.counts.users + joins.users.count - leaves.users.count,
      };
    });
    channel.join();
    window.leave = () => channel.leave();
    window.transportName = () => (socket.transport === window.Phoenix.LongPoll ? 'LongPoll' : 'other');
  }, socketURL);
}

const viewers = (page, n) => page.waitForFunction((v) => window.counts && window.counts.viewers === v, n, WAIT);

test('LongPoll in Chromium, same origin and an allowed cross origin', async () => {
  const base = await freePorts(4);
  const allowed = await blankSite(base + 2);
  const refused = await blankSite(base + 3);
  const own = `http://127.0.0.1:${base + 1}`;
  agent = await startAgent({ name: 'lp', gossip: base, http: base + 1, extra: ['--allowed-origins', `${own},${allowed}`] });
  const socketURL = `${own}/socket`;

  const same = await browser.context.newPage();
  await same.goto(`${own}/healthz`);
  await openLongPoll(same, '/socket');
  await viewers(same, 1);
  assert.equal(await same.evaluate(() => window.transportName()), 'LongPoll');

  const cross = await browser.context.newPage();
  await cross.goto(allowed);
  await openLongPoll(cross, socketURL);
  await viewers(cross, 2);
  await viewers(same, 2);

  const evil = await browser.context.newPage();
  await evil.goto(refused);
  await openLongPoll(evil, socketURL);
  await evil.waitForFunction(() => window.errors.length > 0, null, WAIT);
  assert.equal(await evil.evaluate(() => window.counts), null, 'never joined');
  const truth = await (await fetch(`${own}/v1/topics/${encodeURIComponent(TOPIC)}`)).json();
  assert.equal(truth.viewers.count, 2, 'the refused origin counts for nobody');
  await evil.close();

  await cross.evaluate(() => window.leave());
  await viewers(same, 1);
});
