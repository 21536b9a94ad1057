// A scripted conversation between two official socket.io-client sockets and `tutti lobby`:
// connect, online count, find with interests, matched (one initiator, common interests), signal, typing,
// message both ways, an oversized message refused with an error ack, next (partner_left), stop.
// Usage: node conversation.mjs http://127.0.0.1:PORT [websocket|polling|polling-only]   ("polling": the client's
// default, HTTP long-polling first, then the upgrade to WebSocket; "polling-only": long-polling throughout). Prints "conversation ok" and exits 0 on success.
import { io } from 'socket.io-client';

const url = process.argv[2];
const transports = { polling: ['polling', 'websocket'], 'polling-only': ['polling'] }[process.argv[3]] ?? ['websocket'];
if (!url) { console.error('usage: node conversation.mjs URL'); process.exit(2); }
const timer = setTimeout(() => { console.error('conversation timed out'); process.exit(1); }, 15000);

function connect() {
  const s = io(url, { transports, reconnection: false, forceNew: true });
  s.seen = [];
  s.onAny((name, data) => s.seen.push([name, data]));
  // listened for before the connection opens: over long-polling the server's "online" can come in the same
  // response as the connect packet, and both are handled before an `await connect()` returns
  s.online = once(s, 'online');
  return new Promise((resolve, reject) => { s.on('connect', () => resolve(s)); s.on('connect_error', reject); });
}
function once(s, name) { return new Promise((resolve) => s.once(name, resolve)); }
function ack(s, name, data) { return data === undefined ? s.emitWithAck(name) : s.emitWithAck(name, data); }
function check(cond, what) { if (!cond) { console.error('FAILED: ' + what); process.exit(1); } }

const a = await connect();
const b = await connect();
const online = await Promise.race([b.online, new Promise((r) => setTimeout(() => r(null), 2000))]);
check(online && online.count >= 1, 'online count arrives: ' + JSON.stringify(online));

const aMatched = once(a, 'matched');
const bMatched = once(b, 'matched');
check((await ack(a, 'find', { interests: ['Jazz', 'chess'] })).ok === true, 'find acked');
check((await ack(b, 'find', { interests: ['jazz'] })).ok === true, 'find acked');
const [ma, mb] = await Promise.all([aMatched, bMatched]);
check(ma.initiator !== mb.initiator, 'exactly one initiator');
check(JSON.stringify(ma.common) === '["jazz"]' && JSON.stringify(mb.common) === '["jazz"]', 'common interests');
const [offerer, answerer] = ma.initiator ? [a, b] : [b, a];

const gotSignal = once(answerer, 'signal');
check((await ack(offerer, 'signal', { data: { sdp: { type: 'offer', sdp: 'v=0 fake' } } })).ok, 'signal acked');
check((await gotSignal).data.sdp.type === 'offer', 'signal relayed unchanged');

const gotTyping = once(b, 'typing');
a.emit('typing', { on: true });
check((await gotTyping).on === true, 'typing relayed');

const gotA = once(b, 'message');
await ack(a, 'message', { text: 'hello from a' });
check((await gotA).text === 'hello from a', 'message a -> b');
const gotB = once(a, 'message');
await ack(b, 'message', { text: 'hi from b' });
check((await gotB).text === 'hi from b', 'message b -> a');

const big = await ack(a, 'message', { text: 'x'.repeat(2001) });
check(big.error === 'too_large', 'oversized text refused: ' + JSON.stringify(big));

const left = once(b, 'partner_left');
check((await ack(a, 'next')).ok === true, 'next acked');
await left;
const alone = await ack(b, 'message', { text: 'anyone?' });
check(alone.error === 'no_partner', 'no partner after next: ' + JSON.stringify(alone));
check((await ack(a, 'stop')).ok === true, 'stop acked');

// no event a socket received carries an address
for (const [name, data] of [...a.seen, ...b.seen]) {
  check(!/\b127\.0\.0\.1\b|::1/.test(JSON.stringify(data)), `no address in ${name}`);
}
a.close();
b.close();
clearTimeout(timer);
console.log('conversation ok');
