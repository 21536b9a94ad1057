// tutti lobby page: the server connection (the official Socket.IO client), camera preview, matching,
// WebRTC (optionally through the lobby's TURN relay only, hiding the user's address from the partner) and
// text chat, and calls by ID or name (the identity itself is identity.js). Talks only to the origin it was
// loaded from (and to ICE servers the operator configured); keeps nothing in the browser's storage but the
// optional identity.
'use strict';

// ---- the server connection: socket.io-client 4.8.4 (vendor/socket.io.min.js, served by the lobby) ------
// It starts on HTTP long-polling and upgrades to WebSocket when the network lets it (a proxy that blocks
// WebSocket leaves the page on long-polling), reconnects with a growing delay, and sends every emit in order.
// `emit` only sends while connected (nothing is buffered for a later connection) and says whether it did.
class Line {
  constructor(onState) {
    this.onState = onState;
    // closeOnBeforeunload: a closing tab tries to say goodbye (on long-polling the server would otherwise
    // notice only when the pings stop), so that its partner hears at once that the stranger left
    this.socket = io({ transports: ['polling', 'websocket'], reconnectionDelay: 500, reconnectionDelayMax: 10000, closeOnBeforeunload: true });
    this.socket.on('connect', () => onState('online'));
    this.socket.on('connect_error', () => onState('offline'));
    this.socket.on('disconnect', (reason) => {
      onState('offline');
      // the server ended this socket (persistent abuse): come back later as a new one, as after a drop
      if (reason === 'io server disconnect') setTimeout(() => this.socket.connect(), 2000);
    });
    onState('connecting');
  }
  get connected() { return this.socket.connected; }
  on(name, fn) { this.socket.on(name, fn); }
  emit(name, data, cb) {
    if (!this.socket.connected) return false;
    const args = data === undefined ? [name] : [name, data];
    if (cb) args.push(cb);
    this.socket.emit(...args);
    return true;
  }
}

// ---- page ------------------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const ui = {
  conn: $('conn'), online: $('online'), status: $('status'), interests: $('interests'),
  start: $('start'), next: $('next'), stop: $('stop'), log: $('log'), typing: $('typing'),
  text: $('text'), send: $('send'), chat: $('chat'), controls: $('controls'),
  local: $('local'), remote: $('remote'), partner: $('partner'),
  incoming: $('incoming'), incomingText: $('incomingtext'), accept: $('accept'), decline: $('decline'),
  callForm: $('callform'), callTo: $('callto'), callHint: $('callhint'), hangup: $('hangup'),
  idSummary: $('idsummary'), noId: $('noid'), hasId: $('hasid'), idLabel: $('idlabel'), idCreate: $('idcreate'),
  myId: $('myid'), myName: $('myname'), regForm: $('regform'), regName: $('regname'), reachable: $('reachable'),
  exportForm: $('exportform'), exportPass: $('exportpass'), idDelete: $('iddelete'), idDeleteYes: $('iddeleteyes'),
  idStatus: $('idstatus'), hideIp: $('hideip'), hideIpNote: $('hideipnote'),
};
let iceServers = [];  // the operator's STUN/TURN servers (config.json); `matched` adds minted TURN credentials
let relay = false;    // the lobby has a TURN relay: "hide my IP" can work
let relayOnly = false; // the lobby hides every user's IP address
let noPartnerNoticeAfter = 15; // seconds; the server's config says how long
let localStream = null;
let pc = null;
let pendingCandidates = [];
let searching = false;
let matched = false;
let typingSent = false;
let typingTimer = 0;
let lonelyTimer = 0;
let registryOn = false;
let calling = null;   // our outgoing call: { id, name }
let ringing = null;   // the incoming call shown: { id, name }
let expected = null;  // in a call: the ID the partner must prove
let inCall = false;   // matched through a call (its end does not search again)
let identified = false; // the server checked our identity on this connection (only to call or be reachable)
let ringSeq = 0;      // bumped when a ring ends, so that a late check of it is dropped

function setStatus(text, warn) {
  ui.status.textContent = text;
  ui.status.classList.toggle('warn', !!warn);
}
function setState(state) {
  document.body.dataset.state = state;
  const active = state === 'searching' || state === 'matched';
  ui.next.disabled = !active;
  ui.stop.disabled = !active;
  ui.start.disabled = active;
  ui.text.disabled = state !== 'matched';
  ui.send.disabled = state !== 'matched';
}
function logLine(cls, text) {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = text;
  ui.log.appendChild(li);
  ui.log.scrollTop = ui.log.scrollHeight;
}

const line = new Line((state) => {
  ui.conn.textContent = state === 'online' ? 'connected' : state === 'offline' ? 'offline: reconnecting…' : 'connecting…';
  ui.conn.className = 'badge ' + state;
});

line.on('connect', () => {
  if (searching || matched) find();
  if (ui.reachable.checked) setReachable(true);
});
line.on('disconnect', () => {
  identified = false;
  document.body.dataset.identified = 'no';
  closePeer();
  if (matched) { matched = false; searching = !inCall; }
  endCall(null);
  inCall = false;
});
line.on('online', (d) => { ui.online.textContent = `${d.count} online`; });
line.on('matched', (d) => {
  searching = false;
  matched = true;
  clearTimeout(lonelyTimer);
  ui.log.textContent = '';
  inCall = !!(calling || ringing);
  expected = inCall ? (calling || ringing).id : null;
  const who = inCall ? callee(calling || ringing) : 'a stranger';
  endCall(null);
  showPartner(expected ? 'pending' : 'none', expected ? `Checking that this is ${who}…` : '');
  const common = d.common && d.common.length ? ` You both like: ${d.common.join(', ')}.` : '';
  setStatus(`You're talking to ${who}. Say hi!${common}`);
  logLine('sys', `Connected to ${who}.`);
  setState('matched');
  startPeer(d.initiator, Array.isArray(d.iceServers) ? d.iceServers : []);
  ui.text.focus();
});
line.on('partner_left', () => {
  logLine('sys', inCall ? 'The call ended.' : 'The stranger left.');
  showTyping(false);
  closePeer();
  matched = false;
  if (inCall) {
    inCall = false;
    setState('idle');
    setStatus('The call ended. Press Start to meet a stranger, or call someone.');
    return;
  }
  setStatus('The stranger left. Looking for someone new…');
  find();
});
line.on('message', (d) => { showTyping(false); logLine('them', d.text); });
line.on('typing', (d) => showTyping(!!d.on));
line.on('signal', (d) => onSignal(d.data));

function showTyping(on) { ui.typing.hidden = !on; }

// ---- the partner's identity, checked against the DTLS fingerprint of the SDP actually received ----
/** state: 'none' (hidden), 'pending', 'yes' (verified), 'warning'. */
function showPartner(state, text) {
  ui.partner.hidden = state === 'none';
  ui.partner.dataset.verified = state;
  ui.partner.textContent = text;
}
const callee = (c) => (c.name ? `${c.name} (${Identity.display(c.id)})` : Identity.display(c.id));

async function checkPartner(sdp, identity) {
  const mine = pc;
  if (!identity) {
    if (expected) showPartner('warning', `Warning: the partner did not prove to be ${Identity.display(expected)}. Someone may be between you; do not trust this call.`);
    return;
  }
  const { id, ok } = await Identity.checkSdp(sdp, identity);
  if (pc !== mine) return;
  if (!ok || !id) {
    showPartner('warning', 'Warning: the partner\'s identity does not match this connection (its signed fingerprint differs from the one received). Someone may be intercepting the call; it is not verified.');
    return;
  }
  if (expected && id !== expected) {
    showPartner('warning', `Warning: you called ${Identity.display(expected)} but the partner proved ${Identity.display(id)}. Not verified.`);
    return;
  }
  showPartner('yes', `Verified partner: ${Identity.display(id)}`);
  const name = registryOn ? await Identity.nameOf(id) : null;
  if (name && pc === mine && ui.partner.dataset.verified === 'yes') {
    showPartner('yes', `Verified partner: ${name} (${Identity.display(id)})`);
  }
}

async function withIdentity(sdp) {
  const identity = Identity.me ? await Identity.signSdp(sdp.sdp) : null;
  return identity ? { sdp, identity } : { sdp };
}

function interests() {
  return ui.interests.value.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean).slice(0, 10).map((t) => t.slice(0, 32));
}

async function camera() {
  if (localStream) return;
  try {
    localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    ui.local.srcObject = localStream;
  } catch (e) {
    const camnote = $('camnote');
    camnote.textContent = 'Camera or microphone not available (' + (e && e.name || 'denied') + '). You can still chat by text; allow the camera in your browser\'s site settings to be seen, then reload.';
    camnote.hidden = false;
    document.body.dataset.camera = 'denied';
    return false;
  }
  return true;
}

function find() {
  endCall('cancel');
  searching = true;
  setState('searching');
  if (!line.emit('find', { interests: interests() }, (r) => { if (r && r.error) setStatus(r.message, true); })) return;
  noticeIfLonely();
}
// after a while without a partner, say so (the status goes back to normal once matched)
function noticeIfLonely() {
  clearTimeout(lonelyTimer);
  lonelyTimer = setTimeout(() => {
    if (searching) setStatus('No one found yet. Still looking… (fewer or no interests find someone sooner)', true);
  }, noPartnerNoticeAfter * 1000);
}

ui.controls.addEventListener('submit', async (e) => {
  e.preventDefault();
  await config;
  const ok = await camera();
  if (ok !== false) setStatus('Looking for a stranger…');
  find();
});
function next() {
  closePeer();
  showTyping(false);
  matched = false;
  searching = true;
  setState('searching');
  setStatus('Looking for someone new…');
  if (line.emit('next', undefined, () => {})) noticeIfLonely();
}
ui.next.addEventListener('click', next);
// leaves the partner and the queue (Stop, or before a call)
function leaveConversation() {
  const busy = searching || matched;
  closePeer();
  showTyping(false);
  matched = false;
  searching = false;
  inCall = false;
  clearTimeout(lonelyTimer);
  if (busy) line.emit('stop', undefined, () => {});
  setState('idle');
}
ui.stop.addEventListener('click', () => {
  leaveConversation();
  setStatus('Stopped. Press Start to meet someone.');
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !ui.next.disabled) { e.preventDefault(); next(); }
});

ui.chat.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !matched) return;
  line.emit('message', { text }, (r) => { if (r && r.error) logLine('sys', 'Not sent: ' + r.message); });
  logLine('me', text);
  ui.text.value = '';
  sendTyping(false);
});
ui.text.addEventListener('input', () => {
  if (!matched) return;
  sendTyping(ui.text.value.length > 0);
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => sendTyping(false), 2000);
});
function sendTyping(on) {
  if (on === typingSent) return;
  typingSent = on;
  line.emit('typing', { on });
}

// ---- WebRTC ----------------------------------------------------------------------------------------
// Hiding the IP address (hideip.js): relay candidates only, and nothing that could carry an address of
// this browser leaves the page.
const hiding = () => relayOnly || (relay && ui.hideIp.checked);
function localSdp(hide) {
  const d = pc.localDescription;
  return { type: d.type, sdp: hide ? HideIp.sdp(d.sdp) : d.sdp };
}

function startPeer(initiator, minted) {
  closePeer();
  const hide = hiding();
  pc = new RTCPeerConnection({ iceServers: iceServers.concat(minted), iceTransportPolicy: hide ? 'relay' : 'all' });
  document.body.dataset.rtc = 'new';
  document.body.dataset.rtcHidden = hide ? 'yes' : 'no';
  document.body.dataset.relayError = 'no';
  const mine = pc;
  pc.onconnectionstatechange = () => {
    if (pc !== mine) return;
    document.body.dataset.rtc = pc.connectionState;
    if (pc.connectionState === 'failed') setStatus('The video connection failed; text chat still works.', true);
  };
  let relayed = 0;
  pc.onicecandidate = (e) => {
    const c = e.candidate && (hide ? HideIp.candidate(e.candidate.toJSON()) : e.candidate.toJSON());
    if (c && c.candidate) relayed++;
    if (c) line.emit('signal', { data: { candidate: c } });
  };
  pc.onicegatheringstatechange = () => {
    if (pc !== mine || pc.iceGatheringState !== 'complete' || !hide || relayed > 0) return;
    document.body.dataset.relayError = 'yes';
    setStatus('The relay could not be reached (or refused this page), so there is no video while your IP address is hidden. Text chat still works.', true);
  };
  pc.ontrack = (e) => { ui.remote.srcObject = e.streams[0] || new MediaStream([e.track]); };
  if (localStream) localStream.getTracks().forEach((t) => pc.addTrack(t, localStream));
  else { pc.addTransceiver('video', { direction: 'recvonly' }); pc.addTransceiver('audio', { direction: 'recvonly' }); }
  if (initiator) {
    pc.createOffer().then((offer) => pc.setLocalDescription(offer))
      .then(() => withIdentity(localSdp(hide)))
      .then((data) => { if (pc === mine) line.emit('signal', { data }); })
      .catch(() => setStatus('Could not start the video connection.', true));
  }
}

async function onSignal(data) {
  if (!pc || !data) return;
  const mine = pc;
  try {
    if (data.sdp) {
      checkPartner(String(data.sdp.sdp || ''), data.identity);
      await pc.setRemoteDescription(data.sdp);
      for (const c of pendingCandidates) await pc.addIceCandidate(c);
      pendingCandidates = [];
      if (data.sdp.type === 'offer' && pc === mine) {
        await pc.setLocalDescription(await pc.createAnswer());
        const answer = await withIdentity(localSdp(document.body.dataset.rtcHidden === 'yes'));
        if (pc === mine) line.emit('signal', { data: answer });
      }
    } else if (data.candidate) {
      if (pc.remoteDescription) await pc.addIceCandidate(data.candidate);
      else pendingCandidates.push(data.candidate);
    }
  } catch (e) {
    if (pc === mine) setStatus('The video connection failed; text chat still works.', true);
  }
}

function closePeer() {
  if (pc) { pc.close(); pc = null; }
  pendingCandidates = [];
  ui.remote.srcObject = null;
  document.body.dataset.rtc = 'none';
  showPartner('none', '');
}

const config = fetch('config.json', { credentials: 'omit', cache: 'no-store' })
  .then((r) => r.json())
  .then((c) => {
    iceServers = c.iceServers || [];
    if (typeof c.noPartnerNoticeAfter === 'number' && c.noPartnerNoticeAfter > 0) noPartnerNoticeAfter = c.noPartnerNoticeAfter;
    registryOn = c.registry === true;
    relay = c.relay === true;
    relayOnly = c.relayOnly === true;
  })
  .catch(() => {})
  .then(showHideIp);
setState('idle');

// ---- "hide my IP": what the partner can see, said next to the switch -------------------------------
function showHideIp() {
  const box = ui.hideIp;
  box.disabled = relayOnly || !relay;
  if (relayOnly) box.checked = true;
  if (!relay) box.checked = false;
  const on = hiding();
  document.body.dataset.hideip = relayOnly ? 'forced' : !relay ? 'unavailable' : on ? 'on' : 'off';
  ui.hideIpNote.textContent = HideIp.note(document.body.dataset.hideip);
  if (matched && on !== (document.body.dataset.rtcHidden === 'yes')) {
    ui.hideIpNote.textContent += ' This applies from your next partner.';
  }
}
ui.hideIp.addEventListener('change', showHideIp);
startIdentity(config);

// ---- calls by ID or name ---------------------------------------------------------------------------
// how: 'cancel' (hang up our outgoing call), 'decline' (an incoming one), null (the server ended it)
function endCall(how) {
  if (how === 'cancel' && calling) line.emit('call_cancel', undefined, () => {});
  if (how === 'decline' && ringing) line.emit('call_answer', { accept: false }, () => {});
  if (ringing) ringSeq++;
  calling = null;
  ringing = null;
  ui.incoming.hidden = true;
  ui.hangup.hidden = true;
}

ui.callForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = ui.callTo.value.trim();
  if (!text || calling) return;
  if (!(await identify())) { setStatus('Could not prove your identity to the server; try again.', true); return; }
  let id = Identity.parseId(text);
  let name = null;
  if (!id) {
    if (!registryOn) { setStatus('Give their 40-digit ID (this lobby has no name registry).', true); return; }
    try { id = await Identity.resolve(text); } catch (err) { setStatus(`Could not look up “${text}”: ${err.message}`, true); return; }
    if (!id) { setStatus(`Nobody has registered the name “${text}”.`, true); document.body.dataset.call = 'unknown_name'; return; }
    name = text.toLowerCase();
  } else if (registryOn) {
    name = await Identity.nameOf(id);
  }
  leaveConversation();
  const c = { id, name };
  calling = c;
  ui.hangup.hidden = false;
  document.body.dataset.call = 'calling';
  setStatus(`Calling ${callee(c)}…`);
  line.emit('call', { to: id }, (r) => {
    if (!r || !r.error || calling !== c) return;
    endCall(null);
    document.body.dataset.call = r.error;
    const why = {
      unreachable: `${callee(c)} cannot be reached: not here, or not reachable right now.`,
      busy: `${callee(c)} is busy right now.`,
    };
    setStatus(why[r.error] || r.message, true);
  });
});
ui.hangup.addEventListener('click', () => {
  endCall('cancel');
  document.body.dataset.call = 'canceled';
  setStatus('Call canceled.');
});

line.on('incoming_call', async (d) => {
  const seq = ++ringSeq;
  const id = await Identity.checkProof(d || {});
  if (!id) { line.emit('call_answer', { accept: false }, () => {}); return; } // an unprovable caller
  const name = registryOn ? await Identity.nameOf(id) : null;
  if (seq !== ringSeq) return;
  ringing = { id, name };
  ui.incomingText.textContent = `${callee(ringing)} is calling you (identity verified${name ? '; name verified with the registry' : ''}).`;
  ui.incoming.hidden = false;
  document.body.dataset.call = 'ringing';
  ui.accept.focus();
});
ui.accept.addEventListener('click', () => {
  if (!ringing) return;
  closePeer(); // the server leaves any partner and the queue for us, then matches us with the caller
  showTyping(false);
  clearTimeout(lonelyTimer);
  searching = false;
  matched = false;
  ui.incoming.hidden = true;
  line.emit('call_answer', { accept: true }, (r) => {
    if (r && r.error) { endCall(null); setStatus(`The call is over: ${r.message}`, true); }
  });
});
ui.decline.addEventListener('click', () => {
  endCall('decline');
  document.body.dataset.call = 'declined';
  setStatus('Call declined.');
});
line.on('call_ended', (d) => {
  const reason = (d && d.reason) || 'ended';
  if (calling) {
    const text = {
      declined: `${callee(calling)} declined the call.`,
      timeout: `${callee(calling)} did not answer.`,
      gone: `${callee(calling)} left before answering.`,
    };
    setStatus(text[reason] || 'The call ended.', true);
  } else if (ringing) {
    setStatus(reason === 'timeout' ? 'You missed a call.' : 'The caller hung up.');
  }
  document.body.dataset.call = reason;
  endCall(null);
});

// ---- the identity panel ----------------------------------------------------------------------------
// Proves the identity to the server (a fresh challenge, signed), only when it is needed: to call or to
// be reachable. Until then the server does not learn it. Resolves to whether it is proven.
let proving = null;
function identify() {
  if (identified) return Promise.resolve(true);
  if (!Identity.me || !line.connected) return Promise.resolve(false);
  if (proving) return proving;
  const ask = (name, data) => new Promise((resolve) => { if (!line.emit(name, data, resolve)) resolve(null); });
  proving = (async () => {
    const r = await ask('challenge');
    if (!r || !r.challenge || !Identity.me) return false;
    const a = await ask('identify', await Identity.proof(r.challenge));
    if (!a || !a.ok) { ui.idStatus.textContent = `The server refused the identity: ${a && a.message}`; return false; }
    identified = true;
    document.body.dataset.identified = 'yes';
    return true;
  })().finally(() => { proving = null; });
  return proving;
}
async function setReachable(on) {
  if (on && !(await identify())) return;
  if (!identified) return; // never proven: nothing to turn off
  line.emit('reachable', { on }, (r) => {
    const ok = r && r.ok;
    document.body.dataset.reachable = ok && on ? 'yes' : 'no';
    ui.idStatus.textContent = !ok ? `Reachability: ${r && r.message}`
      : on ? 'Reachable: people who know your ID or name can call you while this page is open.' : 'Not reachable.';
  });
}
ui.reachable.addEventListener('change', () => setReachable(ui.reachable.checked));

function showIdentity() {
  const me = Identity.me;
  ui.noId.hidden = !!me;
  ui.hasId.hidden = !me;
  ui.callForm.hidden = !me;
  document.body.dataset.identity = me ? 'yes' : 'no';
  ui.idSummary.textContent = me ? `(${Identity.display(me.id)})` : '(optional)';
  if (!me) return;
  ui.myId.textContent = Identity.display(me.id);
  ui.exportForm.hidden = !Identity.exportable;
  ui.myName.textContent = 'none';
  ui.regForm.hidden = false;
  if (registryOn) {
    Identity.nameOf(me.id).then((name) => {
      if (name && Identity.me === me) { ui.myName.textContent = name; ui.regForm.hidden = true; }
    });
  }
}
async function startIdentity(configLoaded) {
  await configLoaded;
  document.body.dataset.registry = registryOn ? 'yes' : 'no';
  ui.callHint.textContent = registryOn ? '(their ID or registered name)' : '(their ID)';
  ui.callTo.placeholder = registryOn ? 'ID or name' : 'ID';
  try { await Identity.load(); } catch { ui.idStatus.textContent = 'This browser keeps no storage here: an identity cannot be kept.'; }
  showIdentity();
}

ui.idCreate.addEventListener('click', async () => {
  ui.idCreate.disabled = true;
  try {
    await Identity.create(ui.idLabel.value.trim());
    ui.idStatus.textContent = 'Identity created. Save a password-protected copy now if you want it beyond this browser.';
  } catch (e) {
    ui.idStatus.textContent = `Could not create an identity: ${(e && e.message) || e}`;
  }
  ui.idCreate.disabled = false;
  showIdentity();
});
ui.regForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = ui.regName.value.trim();
  if (!/^[a-z0-9_-]{3,32}$/.test(name)) { ui.idStatus.textContent = 'A name is 3 to 32 of a–z, 0–9, - and _.'; return; }
  const r = await Identity.register(name).catch(() => ({ status: 0, body: {} }));
  if (r.status !== 200) {
    const why = { 403: 'That name is taken, or this ID already has a name.', 502: 'The name registry is not reachable right now.' };
    ui.idStatus.textContent = why[r.status] || `Not registered: ${r.body.error || `error ${r.status}`}`;
    return;
  }
  const id = await Identity.resolve(name).catch(() => null);
  if (id !== Identity.me.id) { ui.idStatus.textContent = 'The registry accepted the name, but its answer does not verify.'; return; }
  ui.myName.textContent = name;
  ui.regForm.hidden = true;
  ui.idStatus.textContent = `Registered “${name}”.`;
});
ui.exportForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const password = ui.exportPass.value;
  if (password.length < 8) { ui.idStatus.textContent = 'Choose a password of at least 8 characters.'; return; }
  ui.idStatus.textContent = 'Encrypting…';
  try {
    const text = await Identity.exportArchive(password);
    const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `tutti-identity-${Identity.me.id.slice(0, 8)}.json`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    ui.exportPass.value = '';
    ui.idStatus.textContent = 'Saved. `tutti id import FILE` reads it; keep the file and its password safe.';
  } catch (err) {
    ui.idStatus.textContent = `Not exported: ${err.message}`;
  }
});
ui.idDelete.addEventListener('click', () => { ui.idDeleteYes.hidden = false; ui.idDeleteYes.focus(); });
ui.idDeleteYes.addEventListener('click', async () => {
  ui.idDeleteYes.hidden = true;
  endCall('cancel');
  if (identified && ui.reachable.checked) line.emit('reachable', { on: false }, () => {});
  ui.reachable.checked = false;
  document.body.dataset.reachable = 'no';
  identified = false; // a new identity proves itself again (the server then forgets this one's reach)
  await Identity.remove();
  showIdentity();
  ui.idStatus.textContent = 'Identity deleted from this browser.';
});
