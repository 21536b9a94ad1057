// tutti lobby page: the optional identity. An Ed25519 key pair made by WebCrypto, its private key kept
// non-extractable in IndexedDB; its ID (SHA-1 of the public key's DER SubjectPublicKeyInfo); a name
// through the operator's registry, reached under this page's own origin (/registry/…) and re-verified
// here; a password-protected export, offered only right after creation (the only moment the private
// key's bytes exist in the page); and the signatures partners exchange over their DTLS fingerprints.
// No network access but this origin; nothing stored but the one IndexedDB record.
'use strict';

const Identity = (() => {
  const DB = 'tutti-lobby';
  const STORE = 'identity';
  const RECORD = 'me';
  const DTLS_CONTEXT = 'tutti-dtls-fingerprint-v1:';
  const REACH_CONTEXT = 'tutti-lobby-reach-v1:';
  const ARCHIVE_CONTEXT = 'tutti-identity-archive-v1:';
  const ITERATIONS = 600000;
  const enc = new TextEncoder();

  const b64 = (bytes) => {
    let s = '';
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s);
  };
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (bytes) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const idOf = async (spki) => hex(await crypto.subtle.digest('SHA-1', spki));
  /** The ID as people read it: 10 groups of 4 hex digits. */
  const display = (id) => (id.match(/.{4}/g) || []).join(' ');
  /** 40 hex digits from what a person typed (spaces, a 0x), or null. */
  const parseId = (text) => {
    const t = text.replace(/\s+/g, '').toLowerCase().replace(/^0x/, '');
    return /^[0-9a-f]{40}$/.test(t) ? t : null;
  };
  const pem = (spki) =>
    `-----BEGIN PUBLIC KEY-----\n${b64(spki).match(/.{1,64}/g).join('\n')}\n-----END PUBLIC KEY-----\n`;
  const publickeyField = (spki) => btoa(pem(spki));
  const spkiOf = (field) => {
    const m = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(atob(field));
    if (!m) throw new Error('not a PEM public key');
    return unb64(m[1].replace(/\s+/g, ''));
  };

  // ---- storage: one record in one IndexedDB database, which deleting removes entirely ----
  const exists = async () => (await indexedDB.databases()).some((d) => d.name === DB);
  const openDb = () => new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  async function inStore(mode, fn) {
    const db = await openDb();
    try {
      return await new Promise((resolve, reject) => {
        const t = db.transaction(STORE, mode);
        const req = fn(t.objectStore(STORE));
        t.oncomplete = () => resolve(req.result);
        t.onerror = () => reject(t.error);
      });
    } finally { db.close(); }
  }

  let me = null;          // { id, spki, privateKey (non-extractable CryptoKey), label, created }
  let exportable = null;  // the PKCS#8 bytes, only in the page that created the key, until it unloads

  async function load() {
    if (!(await exists())) return null;
    const rec = await inStore('readonly', (s) => s.get(RECORD));
    me = rec ? { ...rec, spki: new Uint8Array(rec.spki) } : null;
    return me;
  }

  async function create(label) {
    const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
    const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
    const rec = { id: await idOf(spki), spki, privateKey, label: label || '', created: Date.now() };
    await inStore('readwrite', (s) => s.put(rec, RECORD));
    me = rec;
    exportable = pkcs8;
    return me;
  }

  async function remove() {
    me = null;
    if (exportable) exportable.fill(0);
    exportable = null;
    if (!(await exists())) return;
    await new Promise((resolve, reject) => {
      const r = indexedDB.deleteDatabase(DB);
      r.onsuccess = resolve;
      r.onblocked = resolve;
      r.onerror = () => reject(r.error);
    });
  }

  const sign = async (text) => new Uint8Array(await crypto.subtle.sign('Ed25519', me.privateKey, enc.encode(text)));
  async function verify(spki, signature, text) {
    try {
      const key = await crypto.subtle.importKey('spki', spki, { name: 'Ed25519' }, false, ['verify']);
      return await crypto.subtle.verify('Ed25519', key, unb64(signature), enc.encode(text));
    } catch { return false; }
  }

  // ---- password export: the archive `tutti id import` reads (docs/identity.md) ----
  async function exportArchive(password) {
    if (!me || !exportable) throw new Error('this key can only be exported right after it was made');
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const base = await crypto.subtle.importKey('raw', enc.encode(password), 'PBKDF2', false, ['deriveKey']);
    const key = await crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations: ITERATIONS },
      base, { name: 'AES-GCM', length: 256 }, false, ['encrypt']);
    const ciphertext = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: nonce, additionalData: enc.encode(ARCHIVE_CONTEXT + me.id) }, key, exportable);
    return JSON.stringify({
      format: 'tutti-identity-archive', version: 1, id: me.id, label: me.label,
      kdf: { name: 'pbkdf2-sha256', iterations: ITERATIONS, salt: b64(salt) },
      cipher: { name: 'aes-256-gcm', nonce: b64(nonce) },
      ciphertext: b64(ciphertext),
    }, null, 2) + '\n';
  }

  // ---- the registry, under this origin; every answer is checked here before it is believed ----
  async function registry(method, path, body) {
    const r = await fetch('registry/' + path, {
      method, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    let json = {};
    try { json = await r.json(); } catch { /* not JSON */ }
    return { status: r.status, body: json };
  }

  async function register(name) {
    const addr = '0x' + me.id;
    return registry('POST', 'name/' + encodeURIComponent(name),
      { addr, owner: addr, publickey: publickeyField(me.spki), signature: b64(await sign(name)) });
  }

  /** The name's ID, checked (the key is the address, the signature over the name verifies); null if
   *  the name is not registered; throws if the registry is down or its answer does not verify. */
  async function resolve(name) {
    const lower = name.trim().toLowerCase();
    const r = await registry('GET', 'name/' + encodeURIComponent(lower));
    if (r.status === 404) return null;
    if (r.status !== 200) throw new Error(r.body.error || `the registry answered ${r.status}`);
    const a = r.body;
    const spki = spkiOf(a.publickey);
    const id = await idOf(spki);
    if (a.name !== lower || '0x' + id !== String(a.addr).toLowerCase() || !(await verify(spki, a.signature, lower))) {
      throw new Error('the registry\'s answer for this name does not verify');
    }
    return id;
  }

  /** The ID's registered name, verified the same way, or null. */
  async function nameOf(id) {
    try {
      const r = await registry('GET', 'addr/0x' + id);
      if (r.status !== 200 || typeof r.body.name !== 'string') return null;
      return (await resolve(r.body.name)) === id ? r.body.name.toLowerCase() : null;
    } catch { return null; }
  }

  // ---- proofs ----
  /** The server's reachability challenge, signed. */
  const proof = async (challenge) => ({
    publickey: publickeyField(me.spki), challenge, signature: b64(await sign(REACH_CONTEXT + challenge)),
  });
  /** A caller's proof (relayed by the server in `incoming_call`): its ID if it verifies, else null. */
  async function checkProof(p) {
    try {
      const spki = spkiOf(p.publickey);
      const id = await idOf(spki);
      return id === p.from && (await verify(spki, p.signature, REACH_CONTEXT + p.challenge)) ? id : null;
    } catch { return null; }
  }
  /** The SDP's `a=fingerprint:` values, exactly as written, in SDP order. */
  const fingerprints = (sdp) => sdp.split('\n').map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.startsWith('a=fingerprint:')).map((l) => l.slice('a=fingerprint:'.length));
  /** What goes with our own offer/answer: our key and its signature over our fingerprints. */
  async function signSdp(sdp) {
    const f = fingerprints(sdp);
    if (!me || !f.length) return null;
    return { publickey: publickeyField(me.spki), signature: b64(await sign(DTLS_CONTEXT + f.join('\n'))) };
  }
  /** Checks a partner's signature against the fingerprints of the SDP we actually received:
   *  { id, ok } (id null when the key is unreadable). */
  async function checkSdp(sdp, identity) {
    try {
      const spki = spkiOf(identity.publickey);
      const id = await idOf(spki);
      const f = fingerprints(sdp);
      return { id, ok: f.length > 0 && (await verify(spki, identity.signature, DTLS_CONTEXT + f.join('\n'))) };
    } catch { return { id: null, ok: false }; }
  }

  return {
    get me() { return me; },
    get exportable() { return !!exportable; },
    display, parseId, load, create, remove, exportArchive, register, resolve, nameOf, proof, checkProof,
    signSdp, checkSdp,
  };
})();
