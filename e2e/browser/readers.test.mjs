// Readers in a real browser: an EventSource on /v1/topics/{topic}/events gets presence_state
// then presence_diff and counts no one; the demo page's busiest-topics list (observer
// channels) shows live counts without counting itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo, launch } from './lib.mjs';

const TOPIC = 'browser:readers';
const WAIT = { timeout: 30000 };
let demo;
let browser;

before(async () => {
  demo = await startDemo(2);
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (demo) assert.equal(await demo.stop(), 0, 'demo exits 0 on SIGTERM');
});

async function viewers(page, n) {
  await page.waitForFunction((v) => document.getElementById('viewers').textContent === String(v), n, WAIT);
}

test('EventSource streams presence_state then presence_diff and counts no one', async () => {
  const [url0, url1] = demo.urls.map((u) => u.replace(/\/$/, ''));
  const stream = await browser.context.newPage();
  const errors = [];
  stream.on('pageerror', (e) => errors.push(e.message));
  await stream.goto(`${url0}/healthz`); // any page of the node's origin
  await stream.evaluate((topic) => {
    window.events = [];
    window.counts = { viewers: 0, users: 0 };
    const es = new EventSource('/v1/topics/' + encodeURIComponent(topic) + '/events');
    for (const name of ['presence_state', 'presence_diff']) {
      es.addEventListener(name, (ev) => {
        const p = JSON.parse(ev.data);
        window.events.push(name);
        if (name === 'presence_state') window.counts = { viewers: p.viewers.count, users: p.users.count };
        else for (const k of ['viewers', 'users']) window.counts[k] += p.joins[k].count - p.leaves[k].count;
      });
    }
  }, TOPIC);
  await stream.waitForFunction(() => window.events[0] === 'presence_state', null, WAIT);

  // Two tracked pages on two nodes: the stream on node 0 sees both.
  const a = await browser.context.newPage();
  await a.goto(`${url0}#topic=${encodeURIComponent(TOPIC)}`);
  const b = await browser.context.newPage();
  await b.goto(`${url1}#topic=${encodeURIComponent(TOPIC)}`);
  await viewers(a, 2);
  await stream.waitForFunction(() => window.counts.viewers === 2 && window.events.includes('presence_diff'), null, WAIT);
  const state = await (await fetch(`${url0}/v1/topics/${encodeURIComponent(TOPIC)}`)).json();
  assert.equal(state.connections.count, 2, 'the event stream is not counted');

  // The busiest-topics list on page a observes the topic: live counts, and no third viewer.
  await a.waitForFunction((t) => {
    const li = [...document.querySelectorAll('#busiest li')].find((x) => x.dataset.topic === t);
    return li && li.dataset.viewers === '2';
  }, TOPIC, WAIT);
  await b.close();
  await stream.waitForFunction(() => window.counts.viewers === 1, null, WAIT);
  await a.waitForFunction((t) => {
    const li = [...document.querySelectorAll('#busiest li')].find((x) => x.dataset.topic === t);
    return li && li.dataset.viewers === '1';
  }, TOPIC, WAIT);
  await viewers(a, 1);
  assert.deepEqual(errors, []);
});
