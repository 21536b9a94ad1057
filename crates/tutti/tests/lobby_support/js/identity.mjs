// The lobby page's identities in Debian's Chromium (fake camera), against `tutti lobby` (with
// `--registry` pointing at a real `tutti registry` where the scenario needs names). One scenario a run:
//   verified  A and B create identities, register names, A exports its key (the archive is decrypted
//             here and holds A's key), both press Start and see the partner verified, with its name.
//   tamper    A's outgoing frames pass through a test-only hook (an init script around WebSocket.send and
//             XMLHttpRequest.send, a signaling man-in-the-middle) that alters the DTLS fingerprint in A's offer or answer: B shows the
//             warning and never "verified"; A still sees B verified. Without a registry: names hidden.
//   calls     B is reachable under its name: A calls "bob", B declines; A calls again, B accepts, both
//             matched and verified; A calls C (an identity that is not reachable) and an unknown name.
//   storage   an identity survives a reload (its export is no longer offered, its key is not
//             extractable, and it is not shown to the server unasked); delete empties IndexedDB.
// Every scenario: no request leaves the origin, no cookie, no page error.
// Usage: node identity.mjs SCENARIO http://127.0.0.1:PORT OUTDIR     Prints "identity ok" on success.
import { harness } from './harness.mjs';
import { mkdirSync, readFileSync } from 'node:fs';
import { webcrypto as crypto } from 'node:crypto';

const [scenario, url, outDir] = process.argv.slice(2);
if (!scenario || !url || !outDir) { console.error('usage: node identity.mjs SCENARIO URL OUTDIR'); process.exit(2); }
mkdirSync(outDir, { recursive: true });
const origin = new URL(url).origin;
const wsOrigin = origin.replace(/^http/, 'ws');
const { browser, pages, failures, foreign, step, fail } = await harness(outDir, scenario, { partner: '#partner', id: '#idstatus' });

/** Every request body and WebSocket frame the pages sent (the wire, as the server and the registry see it). */
const sent = [];

async function open(name, initScript) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
  if (initScript) await context.addInitScript(initScript);
  context.on('request', (r) => {
    const u = r.url();
    if (!(u.startsWith(origin + '/') || u.startsWith('data:') || u.startsWith('blob:'))) foreign.push(u);
  });
  context.on('request', (r) => { if (r.postData()) sent.push(r.postData()); });
  const page = await context.newPage();
  page.on('websocket', (ws) => {
    if (!ws.url().startsWith(wsOrigin + '/')) foreign.push(ws.url());
    ws.on('framesent', (f) => sent.push(typeof f.payload === 'string' ? f.payload : Buffer.from(f.payload).toString('latin1')));
  });
  page.on('pageerror', (e) => failures.push(`${name}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') failures.push(`${name} console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForSelector('#conn.online', { timeout: 10000 });
  const p = { name, context, page };
  pages.push(p);
  return p;
}

async function until(p, fn, arg, what, timeout = 15000) {
  try { await p.page.waitForFunction(fn, arg, { timeout }); } catch { await fail(`${p.name}: ${what}`); }
}
const dataIs = (p, key, want, what, timeout) =>
  until(p, ([k, w]) => document.body.dataset[k] === w, [key, want], what || `body[data-${key}] never became ${want}`, timeout);

/** Creates an identity (and registers `name` when given); returns its ID (40 hex digits). */
async function createIdentity(p, name) {
  await p.page.click('#idpanel summary');
  await p.page.click('#idcreate');
  await dataIs(p, 'identity', 'yes');
  const id = (await p.page.textContent('#myid')).replace(/\s+/g, '');
  if (!/^[0-9a-f]{40}$/.test(id)) await fail(`${p.name}: the ID shown is not 40 hex digits in groups: ${id}`);
  if (!/^([0-9a-f]{4} ){9}[0-9a-f]{4}$/.test(await p.page.textContent('#myid'))) await fail(`${p.name}: ID not grouped by 4`);
  if (name) {
    await p.page.fill('#regname', name);
    await p.page.click('#register');
    await until(p, (n) => document.getElementById('myname').textContent === n, name, `${name} was not registered: ${await p.page.textContent('#idstatus')}`);
  }
  return id;
}

async function partnerVerified(p, text) {
  await until(p, (t) => {
    const el = document.getElementById('partner');
    return el.dataset.verified === 'yes' && el.textContent.includes(t);
  }, text, `the partner is not shown verified with "${text}"`);
}

const display = (id) => id.match(/.{4}/g).join(' ');

/** Decrypts an archive the page exported, as `tutti id import` does: its ID and the PKCS#8 key. */
async function openArchive(path, password) {
  const a = JSON.parse(readFileSync(path, 'utf8'));
  const want = { format: 'tutti-identity-archive', version: 1, kdf: 'pbkdf2-sha256', iterations: 600000, cipher: 'aes-256-gcm' };
  const got = { format: a.format, version: a.version, kdf: a.kdf.name, iterations: a.kdf.iterations, cipher: a.cipher.name };
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error('archive header ' + JSON.stringify(got));
  const b = (s) => Buffer.from(s, 'base64');
  if (b(a.kdf.salt).length !== 16 || b(a.cipher.nonce).length !== 12) throw new Error('salt or nonce size');
  const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveKey']);
  const key = await crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt: b(a.kdf.salt), iterations: a.kdf.iterations },
    base, { name: 'AES-GCM', length: 256 }, false, ['decrypt']);
  const pkcs8 = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: b(a.cipher.nonce),
    additionalData: new TextEncoder().encode('tutti-identity-archive-v1:' + a.id) }, key, b(a.ciphertext));
  const priv = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', priv);
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(jwk.x, 'base64url')]);
  const id = Buffer.from(await crypto.subtle.digest('SHA-1', spki)).toString('hex');
  if (id !== a.id) throw new Error(`the archive's key is ${id}, its id field ${a.id}`);
  return { id, pkcs8: Buffer.from(pkcs8) };
}

/** The private key's encodings that could travel: PKCS#8 and its 32-byte seed (RFC 8410: at offset 16;
 *  the JWK "d"), as base64, base64url and hex. */
function keyNeedles(pkcs8) {
  const seed = pkcs8.subarray(16, 48);
  const out = [];
  for (const bytes of [pkcs8, seed]) {
    out.push(bytes.toString('base64').slice(0, 40), bytes.toString('base64url').slice(0, 40), bytes.toString('hex'));
  }
  return out;
}

if (scenario === 'verified') {
  const a = await open('A');
  const b = await open('B');
  const idA = await createIdentity(a, 'alice');
  const idB = await createIdentity(b, 'bob');
  step('A and B made identities and registered alice and bob');
  if (await a.page.isHidden('#exportform')) await fail('export is not offered right after creation');
  await a.page.fill('#exportpass', 'correct horse battery');
  const [download] = await Promise.all([a.page.waitForEvent('download', { timeout: 20000 }), a.page.click('#export')]);
  const file = `${outDir}/archive.json`;
  await download.saveAs(file);
  const exported = await openArchive(file, 'correct horse battery');
  if (exported.id !== idA) await fail('the archive holds another key');
  const wrong = await openArchive(file, 'wrong password').then(() => 'opened', () => 'refused');
  if (wrong !== 'refused') await fail('the archive opens with a wrong password');
  step('A exported its key; the archive decrypts to A\'s key with the password, and not without');
  await a.page.click('#start');
  await b.page.click('#start');
  await dataIs(a, 'state', 'matched');
  await dataIs(b, 'state', 'matched');
  await partnerVerified(a, `bob (${display(idB)})`);
  await partnerVerified(b, `alice (${display(idA)})`);
  step('matched: both show the partner verified with its registered name');
  await a.page.screenshot({ path: `${outDir}/identity-verified.png` });
  const wire = sent.join('\n');
  if (!wire.includes('"signal"') || !wire.includes(idA)) await fail(`the wire capture missed the signaling (${sent.length} sends)`);
  for (const needle of keyNeedles(exported.pkcs8)) {
    if (wire.includes(needle)) await fail(`A's private key (${needle.slice(0, 8)}…) was sent by a page`);
  }
  step(`A's private key is in none of the ${sent.length} requests and frames the pages sent (registration, signaling)`);
} else if (scenario === 'tamper') {
  // the man in the middle: A's offer or answer leaves with one byte of its DTLS fingerprint changed
  // (both transports of the Socket.IO client: WebSocket frames and long-polling POST bodies)
  const mitm = () => {
    const alter = (data) => {
      if (typeof data === 'string' && data.includes('"signal"') && data.includes('a=fingerprint:')) {
        return data.replace(/(a=fingerprint:\S+ )([0-9A-F]{2})/, (_, head, byte) => head + (byte === '00' ? '01' : '00'));
      }
      return data;
    };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) { return send.call(this, alter(data)); };
    const post = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.send = function (body) { return post.call(this, alter(body)); };
  };
  const a = await open('A', mitm);
  const b = await open('B');
  await dataIs(a, 'registry', 'no');
  if (!(await a.page.isHidden('#regform'))) await fail('without a registry the name features show');
  await createIdentity(a);
  const idB = await createIdentity(b);
  step('A (behind the fingerprint-altering hook) and B made identities');
  await a.page.click('#start');
  await b.page.click('#start');
  await dataIs(a, 'state', 'matched');
  await dataIs(b, 'state', 'matched');
  await until(b, () => {
    const el = document.getElementById('partner');
    return el.dataset.verified === 'warning' && /intercept/.test(el.textContent);
  }, null, 'B shows no warning for the altered fingerprint');
  await partnerVerified(a, display(idB));
  await b.page.waitForTimeout(500);
  if (await b.page.evaluate(() => document.getElementById('partner').dataset.verified) !== 'warning') await fail('the warning did not stay');
  step('B warns that the partner\'s fingerprint was altered; A (whose partner was not) sees B verified');
  await b.page.screenshot({ path: `${outDir}/identity-tamper.png` });
} else if (scenario === 'calls') {
  const a = await open('A');
  const b = await open('B');
  const c = await open('C');
  const idA = await createIdentity(a, 'alice');
  const idB = await createIdentity(b, 'bob');
  const idC = await createIdentity(c);
  if (await b.page.evaluate(() => document.body.dataset.identified === 'yes')) await fail('B proved its identity before it was needed');
  await b.page.check('#reachable');
  await dataIs(b, 'reachable', 'yes');
  await dataIs(b, 'identified', 'yes');
  step('B is reachable as bob; C has an identity but is not reachable');
  await a.page.fill('#callto', 'bob');
  await a.page.click('#call');
  await until(b, () => !document.getElementById('incoming').hidden, null, 'B is not rung');
  const ring = await b.page.textContent('#incomingtext');
  if (!ring.includes(`alice (${display(idA)})`) || !/verified/.test(ring)) await fail('B does not see who calls: ' + ring);
  await b.page.click('#decline');
  await dataIs(a, 'call', 'declined');
  await until(a, () => /declined/.test(document.getElementById('status').textContent), null, 'A is not told of the decline');
  step('A called bob by name; B saw alice calling (verified) and declined; A was told');
  await a.page.fill('#callto', 'Bob');
  await a.page.click('#call');
  await until(b, () => !document.getElementById('incoming').hidden, null, 'B is not rung again');
  await b.page.click('#accept');
  await dataIs(a, 'state', 'matched');
  await dataIs(b, 'state', 'matched');
  await partnerVerified(a, `bob (${display(idB)})`);
  await partnerVerified(b, `alice (${display(idA)})`);
  await a.page.fill('#text', 'hello bob');
  await a.page.press('#text', 'Enter');
  await until(b, () => [...document.querySelectorAll('#log .them')].some((li) => li.textContent === 'hello bob'), null, 'B did not get the message');
  step('accepted: matched, both verified with names, chat works');
  await a.page.click('#stop');
  await dataIs(b, 'state', 'idle', 'B did not go idle when the call ended');
  await a.page.fill('#callto', display(idC));
  await a.page.click('#call');
  await dataIs(a, 'call', 'unreachable');
  await a.page.fill('#callto', 'nobody-here');
  await a.page.click('#call');
  await dataIs(a, 'call', 'unknown_name');
  if (!(await c.page.isHidden('#incoming'))) await fail('C, not reachable, was rung');
  step('a call to C\'s ID (not reachable) and to an unknown name are refused clearly');
} else if (scenario === 'storage') {
  const a = await open('A');
  const id = await createIdentity(a);
  await a.page.reload();
  await a.page.waitForSelector('#conn.online', { timeout: 10000 });
  await dataIs(a, 'identity', 'yes', 'after the reload the identity is gone');
  if (await a.page.evaluate(() => document.body.dataset.identified === 'yes')) await fail('the identity was shown to the server without a call or reachability');
  if ((await a.page.textContent('#myid')).replace(/\s+/g, '') !== id) await fail('the reload lost the identity');
  if (!(await a.page.isHidden('#exportform'))) await fail('export is offered for a stored, non-extractable key');
  const extractable = await a.page.evaluate(() => new Promise((resolve) => {
    const r = indexedDB.open('tutti-lobby');
    r.onsuccess = () => {
      const get = r.result.transaction('identity').objectStore('identity').get('me');
      get.onsuccess = () => { resolve(get.result.privateKey.extractable); r.result.close(); };
    };
  }));
  if (extractable !== false) await fail('the stored private key is extractable');
  step('a reload keeps the identity; its stored private key is not extractable');
  await a.page.click('#idpanel summary');
  await a.page.click('#iddelete');
  await a.page.click('#iddeleteyes');
  await dataIs(a, 'identity', 'no');
  const dbs = await a.page.evaluate(async () => (await indexedDB.databases()).length);
  if (dbs !== 0) await fail(`IndexedDB still holds ${dbs} databases`);
  await a.page.reload();
  await a.page.waitForSelector('#conn.online', { timeout: 10000 });
  // (the page looks for a stored identity on its own, not in step with the connection)
  await until(a, () => document.body.dataset.identity !== undefined, null, 'the page never said whether it has an identity');
  await a.page.waitForTimeout(300);
  if (await a.page.evaluate(() => document.body.dataset.identity) !== 'no') await fail('the identity came back after deletion');
  if (await a.page.evaluate(async () => (await indexedDB.databases()).length) !== 0) await fail('a reload made a database');
  step('delete empties IndexedDB, also after a reload');
} else {
  await fail('unknown scenario ' + scenario);
}

for (const p of pages) {
  if ((await p.context.cookies()).length) await fail(`${p.name} has cookies`);
  const stored = await p.page.evaluate(() => localStorage.length + sessionStorage.length);
  if (stored) await fail(`${p.name} stored ${stored} items`);
}
if (foreign.length) await fail('requests left the origin: ' + foreign.join(', '));
// a name look-up of an ID without a name is a 404, which Chromium logs as a console error
const real = failures.filter((f) => !/status of 404/.test(f));
if (real.length) await fail('page errors: ' + real.join(' | '));
await browser.close();
console.log('identity ok');
