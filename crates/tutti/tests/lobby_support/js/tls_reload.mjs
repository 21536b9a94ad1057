// Certificate reload without dropping connections, seen by the official socket.io-client over TLS:
// opens a socket (WebSocket over TLS), prints the SHA-256 fingerprint a fresh TLS connection gets, then
// waits for a line "reloaded" on stdin, checks that the same socket is still connected and answers,
// and prints the fingerprint a fresh connection gets now. Trusts NODE_EXTRA_CA_CERTS (both test certs).
// Usage: node tls_reload.mjs https://127.0.0.1:PORT   Prints "fingerprint before X", "fingerprint after Y",
// "reload ok" and exits 0 on success.
import { io } from 'socket.io-client';
import tls from 'node:tls';
import readline from 'node:readline';

const url = new URL(process.argv[2]);
const timer = setTimeout(() => { console.error('tls_reload timed out'); process.exit(1); }, 20000);
function check(cond, what) { if (!cond) { console.error('FAILED: ' + what); process.exit(1); } }
function fingerprint() {
  return new Promise((resolve, reject) => {
    const c = tls.connect({ host: url.hostname, port: Number(url.port), servername: 'localhost' }, () => {
      resolve(c.getPeerCertificate().fingerprint256);
      c.end();
    });
    c.on('error', reject);
  });
}

const s = io(url.href, { transports: ['websocket'], reconnection: false, forceNew: true });
let disconnected = false;
s.on('disconnect', () => { disconnected = true; });
await new Promise((resolve, reject) => { s.on('connect', resolve); s.on('connect_error', reject); });
const id = s.id;
console.log('fingerprint before ' + await fingerprint());
console.log('connected');
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) { if (line.trim() === 'reloaded') break; }
check(!disconnected && s.connected && s.id === id, 'the socket outlived the reload');
check((await s.emitWithAck('find', { interests: [] })).ok === true, 'the old socket still answers');
console.log('fingerprint after ' + await fingerprint());
console.log('reload ok');
clearTimeout(timer);
s.close();
process.exit(0);
