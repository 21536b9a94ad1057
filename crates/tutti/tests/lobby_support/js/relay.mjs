// Two Chromium pages (Debian's chromium, fake camera and microphone) against `tutti lobby`, one scenario a run:
//   polling   WebSocket is blocked in both pages (an init script replaces it with a stub that throws, as a
//             proxy that refuses the upgrade): they stay on HTTP long-polling, are matched, chat and connect
//             WebRTC with video. Without a relay the switch is off and disabled, and the partner's host
//             candidates do arrive (the control for the candidate checks below).
//   switch    the lobby hands TURN credentials; both users turn "hide my IP" on.
//   forced    the lobby runs with --relay-only: the switch is on and cannot be turned off.
//             Both: connected with video through the relay (the selected candidate pair is a relay one on
//             both sides, bytes flow), and nothing either page received carries a host, srflx or prflx
//             candidate; the words next to the switch say what the partner sees.
//   expired   --relay-only with credentials that expired before they were handed out: no relay candidate,
//             no connection, and the page says why.
// Every scenario: no request leaves the origin, no cookie, no page error, and SECRET (the TURN secret,
// from the environment) is in nothing a page received.
// Usage: SECRET=… node relay.mjs SCENARIO http://127.0.0.1:PORT OUTDIR     Prints "relay ok" on success.
import { harness } from './harness.mjs';
import { mkdirSync } from 'node:fs';

const [scenario, url, outDir] = process.argv.slice(2);
if (!scenario || !url || !outDir) { console.error('usage: node relay.mjs SCENARIO URL OUTDIR'); process.exit(2); }
mkdirSync(outDir, { recursive: true });
const secret = process.env.SECRET || '';
const origin = new URL(url).origin;
const { browser, pages, failures, foreign, step, fail } = await harness(outDir, scenario);

/** A page; `received` collects the Socket.IO traffic it got (WebSocket frames, long-polling bodies), `all` every response body. */
async function open(name, blockWebSocket) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  if (blockWebSocket) {
    await context.addInitScript(() => {
      window.WebSocket = function WebSocket() { throw new DOMException('WebSocket is blocked here', 'SecurityError'); };
    });
  }
  context.on('request', (r) => {
    const u = r.url();
    if (!(u.startsWith(origin + '/') || u.startsWith('data:') || u.startsWith('blob:'))) foreign.push(u);
  });
  const page = await context.newPage();
  const p = { name, context, page, received: [], all: [], websockets: 0 };
  page.on('websocket', (ws) => {
    p.websockets++;
    ws.on('framereceived', (f) => { p.received.push(String(f.payload)); p.all.push(String(f.payload)); });
  });
  page.on('response', async (r) => {
    const body = await r.text().catch(() => '');
    p.all.push(body);
    if (new URL(r.url()).pathname.startsWith('/socket.io/')) p.received.push(body);
  });
  page.on('pageerror', (e) => failures.push(`${name}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') failures.push(`${name} console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForSelector('#conn.online', { timeout: 10000 }).catch(() => fail(`${name} never connected to the lobby`));
  pages.push(p);
  return p;
}

async function until(p, fn, arg, what, timeout = 15000) {
  try { await p.page.waitForFunction(fn, arg, { timeout }); } catch { await fail(`${p.name}: ${what}`); }
}
const dataIs = (p, key, want, timeout) =>
  until(p, ([k, w]) => document.body.dataset[k] === w, [key, want], `body[data-${key}] never became ${want}`, timeout);

/** The types of the ICE candidates in everything the page received (trickled and in SDPs). */
function candidateTypes(p) {
  const types = {};
  for (const text of p.received) {
    for (const m of text.matchAll(/candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ (\w+)/g)) types[m[1]] = (types[m[1]] || 0) + 1;
  }
  return types;
}

async function matchAndTalk(a, b) {
  await a.page.click('#start');
  await b.page.click('#start');
  await dataIs(a, 'state', 'matched');
  await dataIs(b, 'state', 'matched');
  await a.page.fill('#text', `hello from ${a.name}`);
  await a.page.press('#text', 'Enter');
  await until(b, (t) => [...document.querySelectorAll('#log .them')].some((li) => li.textContent === t), `hello from ${a.name}`, 'no message from the partner');
  step('matched, and a message went across');
}

async function videoConnected(p) {
  await until(p, () => document.body.dataset.rtc === 'connected', null, 'WebRTC never connected', 25000);
  await until(p, () => {
    const v = document.getElementById('remote');
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
  }, null, 'no video frames decoded', 20000);
}

/** The selected candidate pair: its local and remote candidate types and the bytes received on it. */
const selectedPair = (p) => p.page.evaluate(async () => {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
  if (!pair) return null;
  return { local: stats.get(pair.localCandidateId).candidateType, remote: stats.get(pair.remoteCandidateId).candidateType, bytes: pair.bytesReceived };
});

async function hiddenCall(a, b, mode) {
  for (const p of [a, b]) {
    await dataIs(p, 'hideip', mode);
    const note = await p.page.textContent('#hideipnote');
    if (!/sees only the relay's address, never yours/.test(note)) await fail(`${p.name}: the note does not say what the partner sees: ${note}`);
  }
  await matchAndTalk(a, b);
  await videoConnected(a);
  await videoConnected(b);
  for (const p of [a, b]) {
    if (await p.page.evaluate(() => document.body.dataset.rtcHidden) !== 'yes') await fail(`${p.name}: the connection was not made hidden`);
    const pair = await selectedPair(p);
    if (!pair || pair.local !== 'relay' || !(pair.bytes > 0)) await fail(`${p.name}: the selected pair is not relayed: ${JSON.stringify(pair)}`);
    const types = candidateTypes(p);
    if (!types.relay) await fail(`${p.name} received no relay candidate: ${JSON.stringify(types)}`);
    if (types.host || types.srflx || types.prflx) await fail(`${p.name} received candidates that carry an address: ${JSON.stringify(types)}`);
    step(`${p.name}: connected through the relay (${JSON.stringify(pair)}), received candidates ${JSON.stringify(types)}`);
  }
}

if (scenario === 'polling') {
  const a = await open('A', true);
  const b = await open('B', true);
  for (const p of [a, b]) {
    const transport = await p.page.evaluate(() => line.socket.io.engine.transport.name);
    if (transport !== 'polling' || p.websockets) await fail(`${p.name}: transport ${transport}, ${p.websockets} WebSockets opened`);
    await dataIs(p, 'hideip', 'unavailable');
    if (!(await p.page.isDisabled('#hideip'))) await fail(`${p.name}: the switch can be turned on without a relay`);
  }
  step('both pages connected over HTTP long-polling (WebSocket blocked); no relay: the switch is off and disabled');
  await matchAndTalk(a, b);
  await videoConnected(a);
  await videoConnected(b);
  const types = candidateTypes(b);
  if (!types.host) await fail(`without hiding, B should have received A's host candidates: ${JSON.stringify(types)}`);
  for (const p of [a, b]) {
    if (await p.page.evaluate(() => line.socket.io.engine.transport.name) !== 'polling') await fail(`${p.name} left long-polling`);
  }
  step(`WebRTC connected with video over long-polling signaling; B received ${JSON.stringify(types)} (not hidden)`);
  await a.page.screenshot({ path: `${outDir}/polling.png` });
} else if (scenario === 'switch') {
  const a = await open('A');
  const b = await open('B');
  for (const p of [a, b]) {
    await dataIs(p, 'hideip', 'off');
    if (!/^Off: .*can learn your IP address/.test(await p.page.textContent('#hideipnote'))) await fail(`${p.name}: the off note`);
    await p.page.check('#hideip');
  }
  step('both users turned "hide my IP" on');
  await hiddenCall(a, b, 'on');
  await a.page.screenshot({ path: `${outDir}/hidden.png` });
} else if (scenario === 'forced') {
  const a = await open('A');
  const b = await open('B');
  for (const p of [a, b]) {
    // the switch is set once the page has its config.json, which may come after the socket connects
    await dataIs(p, 'hideip', 'forced');
    if (!(await p.page.isChecked('#hideip')) || !(await p.page.isDisabled('#hideip'))) await fail(`${p.name}: the switch is not on and locked`);
  }
  await hiddenCall(a, b, 'forced');
} else if (scenario === 'expired') {
  const a = await open('A');
  const b = await open('B');
  await matchAndTalk(a, b);
  for (const p of [a, b]) {
    await dataIs(p, 'relayError', 'yes', 20000);
    if (!/relay could not be reached/.test(await p.page.textContent('#status'))) await fail(`${p.name}: the page does not say why there is no video`);
  }
  await a.page.waitForTimeout(3000);
  for (const p of [a, b]) {
    const rtc = await p.page.evaluate(() => document.body.dataset.rtc);
    if (rtc === 'connected') await fail(`${p.name} connected with expired credentials`);
    const types = candidateTypes(p);
    if (Object.keys(types).length) await fail(`${p.name} received candidates with expired credentials: ${JSON.stringify(types)}`);
  }
  step('expired credentials: no relay candidate, no connection, and both pages say so');
} else {
  await fail(`unknown scenario ${scenario}`);
}

for (const p of pages) {
  if ((await p.context.cookies()).length) await fail(`${p.name} has cookies`);
  if (secret && p.all.some((body) => body.includes(secret))) await fail(`${p.name} received the TURN secret`);
}
// leave the lobby (on long-polling, a tab that just closes is noticed only when its pings stop)
for (const p of pages) {
  await p.page.evaluate(() => line.socket.disconnect());
  await p.page.waitForFunction(() => !line.connected);
}
await pages[0].page.waitForTimeout(300);
if (foreign.length) await fail('requests left the origin: ' + foreign.join(', '));
const real = failures.filter((f) => !/favicon/.test(f));
if (real.length) await fail('page errors: ' + real.join(' | '));
await browser.close();
console.log('relay ok');
