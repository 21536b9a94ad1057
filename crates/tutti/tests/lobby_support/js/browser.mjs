// Three Chromium pages (Debian's chromium, fake camera and microphone) against `tutti lobby`
// (started with `--no-partner-notice-after 1`): A waits alone and is told that nobody was found yet
// after that second; A and B are matched (the notice goes), chat, see typing, connect WebRTC (connected + decoded video frames); C waits,
// A presses Esc (next) and is rematched with C. Asserts no cookie was set and no request left the
// page's origin; a fourth page whose camera is denied is told so and chats by text; saves screenshots (desktop and phone-sized) into OUTDIR.
// Usage: node browser.mjs http://127.0.0.1:PORT OUTDIR     Prints "browser ok" on success.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) { console.error('usage: node browser.mjs URL OUTDIR'); process.exit(2); }
mkdirSync(outDir, { recursive: true });
const origin = new URL(url).origin;
const wsOrigin = origin.replace(/^http/, 'ws');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const browser = await chromium.launch({
  executablePath,
  args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
});
const failures = [];
const foreign = [];
const contexts = [];
const step = (what) => console.log('step: ' + what);
const fail = async (what) => {
  console.error('FAILED: ' + what);
  for (const [i, c] of contexts.entries()) {
    for (const p of c.pages()) await p.screenshot({ path: `${outDir}/failure-${i}.png` }).catch(() => {});
  }
  await browser.close();
  process.exit(1);
};

async function open(name, viewport, denyCamera) {
  const context = await browser.newContext({ viewport: viewport || { width: 1100, height: 760 } });
  if (denyCamera) {
    await context.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
  }
  contexts.push(context);
  context.on('request', (r) => {
    const u = r.url();
    if (!(u.startsWith(origin + '/') || u.startsWith('data:') || u.startsWith('blob:'))) foreign.push(u);
  });
  const page = await context.newPage();
  page.on('websocket', (ws) => { if (!ws.url().startsWith(wsOrigin + '/')) foreign.push(ws.url()); });
  page.on('pageerror', (e) => failures.push(`${name}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') failures.push(`${name} console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForSelector('#conn.online', { timeout: 10000 });
  return { name, context, page };
}

async function state(p, want, timeout = 15000) {
  try {
    await p.page.waitForFunction((w) => document.body.dataset.state === w, want, { timeout });
  } catch { await fail(`${p.name} never reached state ${want} (is ${await p.page.evaluate(() => document.body.dataset.state)})`); }
}

async function rtcConnected(p) {
  try {
    await p.page.waitForFunction(() => document.body.dataset.rtc === 'connected', null, { timeout: 20000 });
    await p.page.waitForFunction(() => {
      const v = document.getElementById('remote');
      return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
    }, null, { timeout: 20000 });
  } catch {
    await fail(`${p.name}: WebRTC not connected with video (rtc=${await p.page.evaluate(() => document.body.dataset.rtc)})`);
  }
}

const a = await open('A');
const b = await open('B');
step('two pages open');
const onlineText = await b.page.textContent('#online');
await b.page.waitForFunction(() => /^\d+ online$/.test(document.getElementById('online').textContent), null, { timeout: 5000 })
  .catch(() => fail('online counter not shown: ' + onlineText));

const noticeShown = () => {
  const status = document.getElementById('status');
  return /No one found yet/.test(status.textContent) && status.classList.contains('warn');
};
const started = Date.now();
await a.page.click('#start');
await state(a, 'searching');
await a.page.waitForFunction(noticeShown, null, { timeout: 8000 })
  .catch(() => fail('A, alone, was not told that nobody was found yet'));
const waited = Date.now() - started;
if (waited < 900) await fail(`the no-partner notice came after ${waited} ms, before the configured second`);
step(`A alone sees the no-partner notice after ${waited} ms`);
await b.page.focus('#start');
await b.page.keyboard.press('Enter'); // keyboard: Start is a form submit
await state(a, 'matched');
await state(b, 'matched');
if (await a.page.evaluate(noticeShown)) await fail('the no-partner notice stays once A is matched');
step('A and B matched, the notice is gone');

await a.page.focus('#text');
await a.page.keyboard.type('hello from A', { delay: 20 });
await b.page.waitForSelector('#typing:not([hidden])', { timeout: 5000 }).catch(() => fail('B does not see A typing'));
await a.page.keyboard.press('Enter');
await b.page.waitForFunction(() => [...document.querySelectorAll('#log .them')].some((li) => li.textContent === 'hello from A'), null, { timeout: 5000 })
  .catch(() => fail('B did not get A\'s message'));
await b.page.waitForSelector('#typing[hidden]', { state: 'attached', timeout: 5000 }).catch(() => fail('typing indicator stays on'));
await b.page.fill('#text', 'hi A, B here');
await b.page.click('#send');
await a.page.waitForFunction(() => [...document.querySelectorAll('#log .them')].some((li) => li.textContent === 'hi A, B here'), null, { timeout: 5000 })
  .catch(() => fail('A did not get B\'s message'));
step('text and typing both ways');

await rtcConnected(a);
await rtcConnected(b);
step('WebRTC connected, video frames decoded on both sides');
await a.page.screenshot({ path: `${outDir}/lobby-desktop.png` });

const c = await open('C', { width: 390, height: 844 });
await c.page.click('#start');
await state(c, 'searching');
const overflow = await c.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
if (overflow > 0) await fail(`phone-sized page scrolls sideways by ${overflow}px`);
await a.page.keyboard.press('Escape'); // next
await state(a, 'matched');
await state(c, 'matched');
step('A pressed Esc and was rematched with C');
await b.page.waitForFunction(() => [...document.querySelectorAll('#log .sys')].some((li) => li.textContent.includes('left')), null, { timeout: 5000 })
  .catch(() => fail('B was not told that A left'));
if (await b.page.evaluate(() => document.body.dataset.state) === 'matched') await fail('B was matched again with someone');
await c.page.fill('#text', 'C says hi');
await c.page.press('#text', 'Enter');
await a.page.waitForFunction(() => [...document.querySelectorAll('#log .them')].some((li) => li.textContent === 'C says hi'), null, { timeout: 5000 })
  .catch(() => fail('A did not get C\'s message'));
await rtcConnected(c);
step('A and C talk, video included');
await c.page.screenshot({ path: `${outDir}/lobby-phone.png` });

// D refuses the camera: a clear message, and text chat still works (B is waiting since A left)
const d = await open('D', undefined, true);
await d.page.click('#start');
await d.page.waitForFunction(() => document.body.dataset.camera === 'denied' && !document.getElementById('camnote').hidden && /Camera or microphone not available/.test(document.getElementById('camnote').textContent), null, { timeout: 5000 })
  .catch(() => fail('no clear message when the camera is denied'));
await state(d, 'matched');
await state(b, 'matched');
await d.page.fill('#text', 'no camera, still here');
await d.page.press('#text', 'Enter');
await b.page.waitForFunction(() => [...document.querySelectorAll('#log .them')].some((li) => li.textContent === 'no camera, still here'), null, { timeout: 5000 })
  .catch(() => fail('B did not get the camera-less D\'s message'));
step('D without a camera is told so, and chats with B by text');

await a.page.click('#stop');
await state(a, 'idle');
for (const [i, ctx] of contexts.entries()) {
  const cookies = await ctx.cookies();
  if (cookies.length) await fail(`page ${i} has cookies: ${JSON.stringify(cookies)}`);
  const stored = await ctx.pages()[0].evaluate(() => localStorage.length + sessionStorage.length);
  if (stored) await fail(`page ${i} stored ${stored} items`);
}
if (foreign.length) await fail('requests left the origin: ' + foreign.join(', '));
const real = failures.filter((f) => !/favicon/.test(f));
if (real.length) await fail('page errors: ' + real.join(' | '));
await browser.close();
console.log('browser ok');
