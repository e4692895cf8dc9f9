// A page whose node stops reconnects by itself when the node comes back,
// and the page on the other node sees the counts go down and up again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePorts, startAgent, launch } from './lib.mjs';

const WAIT = { timeout: 30000 };
const TOPIC = 'browser:reconnect';
let browser;
const agents = [];

before(async () => { browser = await launch(); });
after(async () => {
  if (browser) await browser.close();
  await Promise.all(agents.map((a) => a.stop('SIGKILL')));
});

async function viewers(page, n) {
  await page.waitForFunction((v) => document.getElementById('viewers').textContent === String(v), n, WAIT);
}

test('a page reconnects after its node restarts', async () => {
  const base = await freePorts(4);
  const a = { name: 'a', gossip: base, http: base + 1 };
  const b = { name: 'b', gossip: base + 2, http: base + 3, join: [`127.0.0.1:${base}`] };
  const nodeA = await startAgent(a);
  let nodeB = await startAgent(b);
  agents.push(nodeA, nodeB);

  const pa = await browser.context.newPage();
  const pb = await browser.context.newPage();
  await pa.goto(`${nodeA.url}#topic=${TOPIC}`);
  await pb.goto(`${nodeB.url}#topic=${TOPIC}`);
  await viewers(pa, 2);
  await viewers(pb, 2);

  // b stops gracefully: its socket is closed with 1001, a's page sees one viewer leave.
  const { code } = await nodeB.stop('SIGTERM');
  assert.equal(code, 0, 'agent b exits 0 on SIGTERM');
  await viewers(pa, 1);
  await pb.waitForFunction(() => document.body.dataset.socket === 'reconnecting' || document.body.dataset.socket === 'connecting', null, WAIT);

  // b comes back on the same ports: the page reconnects, rejoins, and is counted again.
  nodeB = await startAgent(b);
  agents.push(nodeB);
  await pb.waitForFunction(() => document.body.dataset.socket === 'open', null, WAIT);
  await viewers(pb, 2);
  await viewers(pa, 2);
});
