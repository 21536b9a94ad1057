// Load generator with the official socket.io-client (one Node process), against `tutti lobby` or the
// Node anchor alike (bench/lobby.sh `client` phases). Loopback only; bounded in sockets and seconds.
//
//   node load.mjs URL PAIRS SECS SERVER_PID            closed loop: find → matched → a message each
//                                                     way → the initiator's next, as fast as it goes
//   node load.mjs URL PAIRS SECS SERVER_PID RATE       open loop: RATE matches/s started on schedule
//                                                     (find from two idle sockets), each ended by the
//                                                     initiator's stop; PAIRS bounds what is in flight
//
// The first second is warm-up. Prints one line `result {json}`: matches/s, relay latency p50/p99 (the
// message from send to arrival at the partner, both in this process), this process's CPU per match and
// the server's (user and system apart, from /proc/SERVER_PID/stat), a socket's time from one `matched`
// to its next (p50), and per match at this client: socket events handled, event-loop turns that brought
// them, and waits (voluntary context switches: each a sleep in epoll until the server's next write).
import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';

const [url, pairsArg, secsArg, pidArg, rateArg] = process.argv.slice(2);
if (!url || !pairsArg || !secsArg || !pidArg) {
  console.error('usage: node load.mjs URL PAIRS SECS SERVER_PID [RATE]');
  process.exit(2);
}
const pairs = Number(pairsArg), secs = Number(secsArg), pid = Number(pidArg), rate = Number(rateArg || 0);
const WARMUP_MS = 1000;
const now = () => performance.now();
const ticks = () => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(f[11]), system: Number(f[12]) }; // utime, stime: clock ticks (1/100 s)
};

const sockets = [];
let connected = 0;
for (let i = 0; i < 2 * pairs; i++) {
  const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
  s.once('connect', () => { connected += 1; if (connected === 2 * pairs) start(); });
  s.on('connect_error', (e) => { console.error('load.mjs: connect error', e.message); process.exit(1); });
  sockets.push(s);
}

let measuring = false, done = false, matches = 0, errors = 0;
const latencies = [];
const cycles = [];
const idle = [];
// At the client: socket events handled, and the event-loop turns that brought them (events handled
// before the next `setImmediate` came in one poll of the sockets: one wake-up of this process).
let events = 0, turns = 0, inTurn = false;
function arrived() {
  if (!measuring) return;
  events += 1;
  if (!inTurn) {
    inTurn = true;
    turns += 1;
    setImmediate(() => { inTurn = false; });
  }
}
function run(s, closed) {
  let initiator = false, lastMatched = 0;
  s.on('matched', (m) => {
    arrived();
    initiator = m.initiator === true;
    const t = now();
    if (measuring && lastMatched) cycles.push(t - lastMatched);
    lastMatched = t;
    s.emit('message', { text: String(t) });
  });
  s.on('message', (m) => {
    arrived();
    if (measuring) latencies.push(now() - Number(m.text));
    if (!initiator) return;
    if (measuring) matches += 1;
    if (done) return;
    if (closed) s.emit('next');
    else { s.emit('stop'); idle.push(s); }
  });
  s.on('partner_left', () => {
    arrived();
    if (done) return;
    if (closed) s.emit('find', {});
    else idle.push(s);
  });
}

function start() {
  const closed = rate === 0;
  sockets.forEach((s) => run(s, closed));
  let t0;
  setTimeout(() => {
    measuring = true;
    t0 = { at: now(), cpu: process.cpuUsage(), server: ticks(), waits: process.resourceUsage().voluntaryContextSwitches };
  }, WARMUP_MS);
  setTimeout(() => finish(t0), WARMUP_MS + secs * 1000);
  if (closed) { sockets.forEach((s) => s.emit('find', {})); return; }
  sockets.forEach((s) => idle.push(s));
  const begun = now();
  let started = 0;
  const timer = setInterval(() => {
    if (done) { clearInterval(timer); return; }
    const due = Math.floor(((now() - begun) / 1000) * rate) - started;
    for (let k = 0; k < due; k++) {
      if (idle.length < 2) { errors += 1; continue; } // more in flight than PAIRS allows: not offered
      idle.pop().emit('find', {});
      idle.pop().emit('find', {});
    }
    started += due;
  }, 1);
}

function finish(t0) {
  measuring = false; done = true;
  const wall = (now() - t0.at) / 1000;
  const cpu = process.cpuUsage(t0.cpu);
  const server = ticks();
  const su = (server.user - t0.server.user) * 1e4, ss = (server.system - t0.server.system) * 1e4; // µs
  const waits = process.resourceUsage().voluntaryContextSwitches - t0.waits;
  latencies.sort((a, b) => a - b);
  cycles.sort((a, b) => a - b);
  const quantile = (xs, p) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN);
  const q = (p) => quantile(latencies, p);
  const per = (x) => (matches ? x / matches : NaN);
  console.log('result ' + JSON.stringify({
    mode: rate ? 'open' : 'closed', pairs, secs, offered_per_sec: rate || null, matches,
    matches_per_sec: matches / wall, not_offered: errors,
    msg_p50_ms: q(0.5), msg_p99_ms: q(0.99),
    client_cpu_us_per_match: per(cpu.user + cpu.system),
    server_cpu_us_per_match: per(su + ss), server_user_us_per_match: per(su), server_system_us_per_match: per(ss),
    server_cpu_percent: ((su + ss) / 1e6 / wall) * 100,
    cycle_p50_ms: quantile(cycles, 0.5),
    client_events_per_match: per(events), client_turns_per_match: per(turns), client_waits_per_match: per(waits),
  }));
  sockets.forEach((s) => s.close());
  setTimeout(() => process.exit(0), 100);
}
