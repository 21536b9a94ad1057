// Calls by ID over the wire with the official socket.io-client and Node's WebCrypto (Ed25519): the
// caller connects to URL_A, the callee to URL_B (two `tutti lobby --redis` processes, or the same URL
// twice). Checks: a bad or replayed proof is refused; reachability needs a proof; a call to an ID nobody
// made reachable is `unreachable`; the callee gets `incoming_call` with a proof that verifies to the
// caller's ID; decline → `call_ended {reason: declined}`; cancel → the callee's `call_ended canceled`;
// accept → both `matched` (the caller initiates) and signals flow; after the callee disconnects its ID is
// unreachable again. Usage: node calls.mjs URL_A URL_B     Prints "calls ok" and exits 0 on success.
import { io } from 'socket.io-client';
import { webcrypto as crypto } from 'node:crypto';

const [urlA, urlB] = process.argv.slice(2);
if (!urlA || !urlB) { console.error('usage: node calls.mjs URL_A URL_B'); process.exit(2); }
const timer = setTimeout(() => { console.error('calls timed out'); process.exit(1); }, 25000);
const check = (cond, what) => { if (!cond) { console.error('FAILED: ' + what); process.exit(1); } };
const enc = new TextEncoder();
const b64 = (bytes) => Buffer.from(bytes).toString('base64');

async function identity() {
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const spki = Buffer.from(await crypto.subtle.exportKey('spki', pair.publicKey));
  const id = Buffer.from(await crypto.subtle.digest('SHA-1', spki)).toString('hex');
  const pem = `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END PUBLIC KEY-----\n`;
  const sign = async (text) => b64(new Uint8Array(await crypto.subtle.sign('Ed25519', pair.privateKey, enc.encode(text))));
  return { id, publickey: Buffer.from(pem).toString('base64'), sign };
}

function connect(url) {
  const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => { s.on('connect', () => resolve(s)); s.on('connect_error', reject); });
}
const once = (s, name, ms = 5000) => new Promise((resolve) => {
  const t = setTimeout(() => resolve(null), ms);
  s.once(name, (d) => { clearTimeout(t); resolve(d); });
});
const ack = (s, name, data) => (data === undefined ? s.emitWithAck(name) : s.emitWithAck(name, data));

async function prove(s, who) {
  const { challenge } = await ack(s, 'challenge');
  check(typeof challenge === 'string' && challenge.length >= 40, 'a challenge of 32 random bytes');
  const proof = { publickey: who.publickey, challenge, signature: await who.sign('tutti-lobby-reach-v1:' + challenge) };
  const r = await ack(s, 'identify', proof);
  check(r.ok === true && r.id === who.id, 'identify acks the ID: ' + JSON.stringify(r));
  return proof;
}

const alice = await identity();
const bob = await identity();
console.log(`ids: ${alice.id} ${bob.id}`);
const a = await connect(urlA);
const b = await connect(urlB);

// proofs: unsigned, wrong context, replayed
check((await ack(b, 'reachable', { on: true })).error === 'not_identified', 'reachable needs a proof');
check((await ack(a, 'call', { to: bob.id })).error === 'not_identified', 'calling needs a proof');
const { challenge } = await ack(b, 'challenge');
const wrong = await ack(b, 'identify', { publickey: bob.publickey, challenge, signature: await bob.sign(challenge) });
check(wrong.error === 'bad_proof', 'a signature without the context prefix is refused: ' + JSON.stringify(wrong));
const used = await prove(b, bob);
check((await ack(b, 'identify', used)).error === 'bad_proof', 'a challenge is used once');
await prove(b, bob);
await prove(a, alice);

check((await ack(a, 'call', { to: bob.id })).error === 'unreachable', 'not reachable until turned on');
check((await ack(b, 'reachable', { on: true })).ok === true, 'reachable');
await new Promise((r) => setTimeout(r, 100));

// ring → decline
let ring = once(b, 'incoming_call');
check((await ack(a, 'call', { to: '0x' + bob.id.toUpperCase() })).ok === true, 'the call rings');
let incoming = await ring;
check(incoming && incoming.from === alice.id, 'incoming_call from alice: ' + JSON.stringify(incoming));
const key = await crypto.subtle.importKey('spki', Buffer.from(Buffer.from(incoming.publickey, 'base64').toString().replace(/-----[^-]+-----|\s/g, ''), 'base64'), { name: 'Ed25519' }, false, ['verify']);
check(await crypto.subtle.verify('Ed25519', key, Buffer.from(incoming.signature, 'base64'), enc.encode('tutti-lobby-reach-v1:' + incoming.challenge)), 'the caller\'s proof verifies');
check((await ack(a, 'call', { to: bob.id })).error === 'call_pending', 'one call at a time');
let ended = once(a, 'call_ended');
check((await ack(b, 'call_answer', { accept: false })).ok === true, 'decline acked');
check((await ended)?.reason === 'declined', 'the caller is told: declined');

// ring → cancel
ring = once(b, 'incoming_call');
await ack(a, 'call', { to: bob.id });
check(await ring, 'rung again');
ended = once(b, 'call_ended');
check((await ack(a, 'call_cancel')).ok === true, 'cancel acked');
check((await ended)?.reason === 'canceled', 'the callee is told: canceled');

// ring → accept → matched like a random match, then signals
ring = once(b, 'incoming_call');
await ack(a, 'call', { to: bob.id });
check(await ring, 'rung a third time');
const aMatched = once(a, 'matched');
const bMatched = once(b, 'matched');
check((await ack(b, 'call_answer', { accept: true })).ok === true, 'accept acked');
const [ma, mb] = [await aMatched, await bMatched];
check(ma && mb && ma.initiator === true && mb.initiator === false, 'both matched, the caller initiates');
const signal = once(b, 'signal');
await ack(a, 'signal', { data: { sdp: { type: 'offer', sdp: 'v=0' }, identity: { publickey: 'k', signature: 's' } } });
check((await signal)?.data?.identity?.signature === 's', 'the offer and its signature are relayed unchanged');
const left = once(b, 'partner_left');
await ack(a, 'stop');
check(await left, 'partner_left after the call');

// the callee goes: its ID goes with it
b.disconnect();
// (scaled out, the other process learns of the disconnect through Redis: a call made before then still
// rings, and is cancelled, and tried again)
let gone = null;
for (const until = Date.now() + 10000; Date.now() < until;) {
  await new Promise((r) => setTimeout(r, 200));
  gone = await ack(a, 'call', { to: bob.id });
  if (gone.error === 'unreachable') break;
  if (gone.ok) check((await ack(a, 'call_cancel')).ok === true, 'cancel acked');
}
check(gone?.error === 'unreachable', 'gone with the socket: ' + JSON.stringify(gone));
a.disconnect();
clearTimeout(timer);
console.log('calls ok');
