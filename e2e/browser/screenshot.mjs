// Takes the README's picture of the demo page: a 3-node `headcount demo`
// with a few viewers and users in one topic, seen from node-1.
// Usage: HEADCOUNT_BIN=/path/to/headcount node screenshot.mjs OUT.png
import { startDemo, launch } from './lib.mjs';

const out = process.argv[2];
if (!out) throw new Error('usage: node screenshot.mjs OUT.png');
const topic = '#topic=video:intro';
const demo = await startDemo(3);
const browser = await launch();
try {
  const [u0, u1, u2] = demo.urls;
  const extra = [];
  const open = async (url, user) => {
    const p = await browser.context.newPage();
    await p.goto(url + topic);
    if (user) {
      await p.waitForSelector('#signin-form:not([hidden])');
      await p.fill('#signin-input', user);
      await p.click('#signin-form button[type=submit]');
      await p.waitForFunction((name) => document.getElementById('me').textContent === name, user);
    }
    return p;
  };
  // The page in the picture opens first, so its chart shows the others arrive.
  const page = await open(u1, 'alice');
  const pause = () => page.waitForTimeout(2500); // pacing for the chart, not synchronisation
  for (const [url, user] of [[u0], [u2], [u0, 'bob'], [u2], [u2, 'carol'], [u0], [u2, 'bob']]) {
    await pause();
    extra.push(await open(url, user));
  }
  await pause();
  await extra.pop().close(); // a viewer leaves (the second bob: users stay at 3)
  await extra[5].close();
  await page.waitForFunction(() => document.getElementById('viewers').textContent === '3' &&
    document.getElementById('users').textContent === '3' &&
    document.querySelectorAll('#members li.alive').length === 3);
  await page.waitForTimeout(700); // let the count animation settle for the picture
  await page.screenshot({ path: out, fullPage: true });
  console.log('wrote', out);
} finally {
  await browser.close();
  await demo.stop();
}
