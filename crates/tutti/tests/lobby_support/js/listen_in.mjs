// Debian's Chromium opens the listen-in page of `tutti server --stream`, presses play, and the stream
// plays: the media element reports 'playing' and its time advances. No cookie is set and no request
// leaves the page's origin.
// Usage: node listen_in.mjs http://127.0.0.1:PORT/     Prints "listen-in ok" on success.
import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);
if (!url) { console.error('usage: node listen_in.mjs URL'); process.exit(2); }
const origin = new URL(url).origin;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--autoplay-policy=no-user-gesture-required'],
});
const fail = async (what) => { console.error('FAILED: ' + what); await browser.close(); process.exit(1); };
const context = await browser.newContext();
const page = await context.newPage();
const foreign = [];
page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url()); });
await page.goto(url);
if (!(await page.textContent('h1'))) await fail('no heading');
await page.evaluate(() => {
  const a = document.getElementById('stream');
  window.__events = [];
  for (const e of ['playing', 'waiting', 'error', 'stalled']) a.addEventListener(e, () => window.__events.push(e));
});
await page.click('#play');
try {
  await page.waitForFunction(() => window.__events.includes('playing'), null, { timeout: 20000 });
} catch (e) {
  const state = await page.evaluate(() => {
    const a = document.getElementById('stream');
    return { events: window.__events, error: a.error && a.error.message, readyState: a.readyState, networkState: a.networkState };
  });
  await fail('no playing event: ' + JSON.stringify(state));
}
const t1 = await page.evaluate(() => document.getElementById('stream').currentTime);
// two seconds of it play (within 15 s: a busy machine may make the browser rebuffer)
const advanced = await page.waitForFunction((t) => document.getElementById('stream').currentTime > t + 2, t1, { timeout: 15000 })
  .then(() => true, () => false);
const t2 = await page.evaluate(() => document.getElementById('stream').currentTime);
console.log(`step: currentTime ${t1} -> ${t2}`);
if (!advanced) await fail(`the stream does not advance: ${t1} -> ${t2}`);
const count = await page.evaluate(() => fetch('/status.json').then((r) => r.json()));
if (count.listeners !== 1) await fail('status.json: ' + JSON.stringify(count));
const cookies = await context.cookies();
if (cookies.length) await fail('cookies: ' + JSON.stringify(cookies));
if (foreign.length) await fail('requests outside the origin: ' + foreign.join(', '));
await browser.close();
console.log('listen-in ok');
