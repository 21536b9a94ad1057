// GET a URL with Node's https/http module (trusting NODE_EXTRA_CA_CERTS) and print the body; exits 1 unless 200.
// Usage: node fetch.mjs https://127.0.0.1:PORT/
import http from 'node:http';
import https from 'node:https';

const url = new URL(process.argv[2]);
(url.protocol === 'https:' ? https : http).get(url, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { body += chunk; });
  res.on('end', () => { console.log(body); process.exit(res.statusCode === 200 ? 0 : 1); });
}).on('error', (e) => { console.error(String(e)); process.exit(1); });
