// The lobby's events (docs/lobby-protocol.md) on Node.js + socket.io 4.x: the benchmark's anchor for
// `tutti lobby`. Same matching rules (FIFO, shared interest first, random after the wait, never self,
// never the partner just left), same acks, limits and online broadcast; RAM only.
// Usage: node server.mjs [--port 0] [--rate 20] [--burst 60] [--fallback-wait 5]
// Prints "listening on http://127.0.0.1:PORT/"; GET /stats gives {sockets, waiting, pairs}.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const arg = (name, dflt) => {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const limits = {
  text: 2000, signal: 16384, tags: 10, tagChars: 32,
  rate: arg('rate', 20), burst: arg('burst', 60), strikes: 30, window: 10000,
};
const fallbackWait = arg('fallback-wait', 5) * 1000;

const peers = new Map(); // id -> { interests, partner, skipped, since, fbTried, tokens, refilled, strikes, lastStrike, socket }
const queue = new Map(); // id -> true, in arrival order (FIFO)
let pairs = 0;

const http = createServer((req, res) => {
  if (req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ sockets: peers.size, waiting: queue.size, pairs }));
  } else { res.statusCode = 404; res.end(); }
});
const io = new Server(http, { serveClient: false, maxHttpBufferSize: 64 * 1024, cors: undefined });

class Refusal extends Error { constructor(code, message) { super(message); this.code = code; } }
const bad = (event, reason) => new Refusal('bad_payload', `the payload of \`${event}\` is malformed: ${reason}`);

function spend(p, now) {
  p.tokens = Math.min(limits.burst, p.tokens + (now - p.refilled) / 1000 * limits.rate);
  p.refilled = now;
  if (p.tokens >= 1) { p.tokens -= 1; return true; }
  return false;
}
function strike(p, now) {
  if (now - p.lastStrike > limits.window) p.strikes = 0;
  p.lastStrike = now;
  p.strikes += 1;
  return p.strikes <= limits.strikes;
}
function parseInterests(data) {
  let raw = [];
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    if (data.interests != null) {
      if (!Array.isArray(data.interests) || data.interests.some((t) => typeof t !== 'string')) throw bad('find', 'interests must be an array of strings');
      raw = data.interests;
    }
  } else if (data != null) throw bad('find', 'expected an object');
  const invalid = new Refusal('invalid_interests', `interests: at most ${limits.tags} tags of at most ${limits.tagChars} characters each`);
  if (raw.length > limits.tags) throw invalid;
  const tags = [];
  for (const t of raw) {
    const tag = t.trim().toLowerCase();
    if ([...tag].length > limits.tagChars) throw invalid;
    if (tag) tags.push(tag);
  }
  return [...new Set(tags)].sort();
}
const common = (a, b) => a.filter((t) => b.includes(t));
const acceptsRandom = (p, now) => p.since != null && (p.interests.length === 0 || now - p.since >= fallbackWait);
const compatible = (a, b) => a !== b && peers.get(a).skipped !== b && peers.get(b).skipped !== a;

function enqueue(id, now) { queue.set(id, true); const p = peers.get(id); p.since = now; p.fbTried = false; }
function dequeue(id) { queue.delete(id); const p = peers.get(id); if (p) p.since = null; }

function tryMatch(id, now) {
  const me = peers.get(id);
  if (!me || me.since == null) return;
  const meRandom = acceptsRandom(me, now);
  let found = null, foundCommon = [], random = null;
  for (const other of queue.keys()) {
    if (!compatible(id, other)) continue;
    const them = peers.get(other);
    const c = common(me.interests, them.interests);
    if (c.length) { found = other; foundCommon = c; break; }
    if (random == null && meRandom && acceptsRandom(them, now)) { random = other; if (!me.interests.length) break; }
  }
  if (found == null) found = random;
  if (found == null) return;
  dequeue(id); dequeue(found);
  me.partner = found; peers.get(found).partner = id;
  pairs += 1;
  peers.get(found).socket.emit('matched', { initiator: false, common: foundCommon });
  me.socket.emit('matched', { initiator: true, common: foundCommon });
}
function leavePartner(id) {
  const p = peers.get(id);
  const partner = p.partner;
  if (partner == null) return;
  p.partner = null; p.skipped = partner;
  const other = peers.get(partner);
  if (other) { other.partner = null; other.skipped = id; other.socket.emit('partner_left', {}); }
  pairs -= 1;
}
function relay(id, event, payload) {
  const partner = peers.get(id).partner;
  if (partner == null) throw new Refusal('no_partner', 'there is no partner to send this to');
  peers.get(partner).socket.emit(event, payload);
}

const jobs = {
  find(id, data, now) {
    const interests = parseInterests(data);
    const p = peers.get(id);
    if (p.partner != null) throw new Refusal('already_matched', 'already matched: send `next` to change partner');
    p.interests = interests;
    if (p.since == null) enqueue(id, now);
    tryMatch(id, now);
  },
  next(id, _data, now) { leavePartner(id); if (peers.get(id).since == null) enqueue(id, now); tryMatch(id, now); },
  stop(id) { leavePartner(id); dequeue(id); },
  signal(id, data) {
    if (!data || typeof data !== 'object' || !('data' in data)) throw bad('signal', 'expected {data}');
    if (Buffer.byteLength(JSON.stringify(data.data)) > limits.signal) throw new Refusal('too_large', `signal data is larger than the limit of ${limits.signal} bytes`);
    relay(id, 'signal', { data: data.data });
  },
  message(id, data) {
    if (!data || typeof data.text !== 'string') throw bad('message', 'expected {text: string}');
    if ([...data.text].length > limits.text) throw new Refusal('too_large', `message text is larger than the limit of ${limits.text} characters`);
    relay(id, 'message', { text: data.text });
  },
  typing(id, data) {
    if (!data || typeof data.on !== 'boolean') throw bad('typing', 'expected {on: bool}');
    relay(id, 'typing', { on: data.on });
  },
};

io.on('connection', (socket) => {
  const id = socket.id;
  const now = Date.now();
  peers.set(id, { interests: [], partner: null, skipped: null, since: null, fbTried: false, tokens: limits.burst, refilled: now, strikes: 0, lastStrike: now, socket });
  socket.emit('online', { count: peers.size });
  for (const [event, job] of Object.entries(jobs)) {
    socket.on(event, (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : () => {};
      const p = peers.get(id);
      if (!p) return;
      const now = Date.now();
      let abusive = false;
      try {
        if (!spend(p, now)) { abusive = !strike(p, now); throw new Refusal('rate_limited', 'too many events: slow down'); }
        job(id, args[0], now);
        ack({ ok: true });
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        if (e.code !== 'rate_limited' && e.code !== 'no_partner' && e.code !== 'already_matched') abusive = abusive || !strike(p, now);
        if (abusive) { ack({ error: 'abusive', message: 'persistent abuse: disconnected' }); socket.disconnect(true); return; }
        ack({ error: e.code, message: e.message });
      }
    });
  }
  socket.on('disconnect', () => {
    if (!peers.has(id)) return;
    jobs.stop(id);
    const p = peers.get(id);
    if (p.skipped != null) { const o = peers.get(p.skipped); if (o && o.skipped === id) o.skipped = null; }
    peers.delete(id);
  });
});

let lastOnline = null;
setInterval(() => {
  if (peers.size !== lastOnline) { lastOnline = peers.size; io.emit('online', { count: lastOnline }); }
}, 500);
setInterval(() => {
  const now = Date.now();
  for (const id of [...queue.keys()]) {
    const p = peers.get(id);
    if (p && p.since != null && !p.fbTried && p.interests.length && now - p.since >= fallbackWait) { p.fbTried = true; tryMatch(id, now); }
  }
}, 250);

http.listen(arg('port', 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${http.address().port}/`);
});
