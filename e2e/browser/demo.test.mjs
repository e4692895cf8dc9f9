// Two pages on two nodes of `headcount demo` see each other's presence:
// counts change in both as pages come, sign in, and go.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo, launch } from './lib.mjs';

const TOPIC = 'browser:test';
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

// counts waits until a page shows the given viewers and users.
async function counts(page, viewers, users) {
  await page.waitForFunction(
    ([v, u]) => document.getElementById('viewers').textContent === String(v) &&
      document.getElementById('users').textContent === String(u),
    [viewers, users], WAIT);
}

test('two pages on two nodes see counts change in both', async () => {
  const [url0, url1] = demo.urls;
  const a = await browser.context.newPage();
  const b = await browser.context.newPage();
  const errors = [];
  for (const p of [a, b]) p.on('pageerror', (e) => errors.push(e.message));

  await a.goto(`${url0}#topic=${encodeURIComponent(TOPIC)}`);
  await counts(a, 1, 0);
  await b.goto(`${url1}#topic=${encodeURIComponent(TOPIC)}`);
  await counts(a, 2, 0);
  await counts(b, 2, 0);

  // Each page says which node it is on, and both see the two-node cluster.
  await a.waitForFunction(() => document.getElementById('node-name').textContent === 'node-0', null, WAIT);
  await b.waitForFunction(() => document.getElementById('node-name').textContent === 'node-1', null, WAIT);
  await a.waitForFunction(() => document.querySelectorAll('#members li').length === 2, null, WAIT);
  assert.equal(await a.locator('#current-topic').textContent(), TOPIC);

  // b signs in: one viewer becomes one user, on both nodes.
  await b.waitForSelector('#signin-form:not([hidden])', WAIT);
  await b.fill('#signin-input', 'alice');
  await b.click('#signin-form button[type=submit]');
  await b.waitForFunction(() => document.getElementById('me').textContent === 'alice', null, WAIT);
  await counts(a, 1, 1);
  await counts(b, 1, 1);

  // a switches topic: it leaves the old one everywhere.
  await a.fill('#topic-input', 'browser:elsewhere');
  await a.click('#topic-form button[type=submit]');
  await counts(a, 1, 0);
  await counts(b, 0, 1);

  // b's page goes away: its user leaves the counts.
  await a.fill('#topic-input', TOPIC);
  await a.click('#topic-form button[type=submit]');
  await counts(a, 1, 1);
  await b.close();
  await counts(a, 1, 0);

  assert.deepEqual(errors, [], 'no uncaught errors in the pages');
});
