// tutti lobby page: a tiny Socket.IO v5 client (WebSocket only), camera preview, matching, WebRTC and
// text chat. Talks only to the origin it was loaded from (and to ICE servers the operator configured);
// keeps nothing in the browser's storage.
'use strict';

// ---- Socket.IO v5 over Engine.IO v4, WebSocket transport -------------------------------------------
class Line {
  constructor(onState) {
    this.handlers = {};
    this.acks = new Map();
    this.nextAck = 1;
    this.onState = onState;
    this.retry = 500;
    this.open();
  }
  open() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/socket.io/?EIO=4&transport=websocket`);
    this.ws = ws;
    this.connected = false;
    this.onState('connecting');
    ws.onmessage = (e) => this.packet(String(e.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.connected = false;
      this.onState('offline');
      this.fire('disconnect');
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }
  packet(p) {
    const type = p[0];
    if (type === '0') { this.ws.send('40'); return; }    // Engine.IO open -> Socket.IO connect
    if (type === '2') { this.ws.send('3'); return; }     // ping -> pong
    if (type !== '4') return;
    const sio = p[1];
    let rest = p.slice(2);
    if (sio === '0') { this.connected = true; this.retry = 500; this.onState('online'); this.fire('connect'); return; }
    if (sio === '1' || sio === '4') { this.ws.close(); return; }
    const digits = /^\d*/.exec(rest)[0];
    rest = rest.slice(digits.length);
    let args;
    try { args = JSON.parse(rest); } catch { return; }
    if (sio === '2') this.fire(args[0], args[1]);
    else if (sio === '3') {
      const cb = this.acks.get(Number(digits));
      this.acks.delete(Number(digits));
      if (cb) cb(args[0]);
    }
  }
  on(name, fn) { this.handlers[name] = fn; }
  fire(name, data) { const fn = this.handlers[name]; if (fn) fn(data); }
  emit(name, data, cb) {
    if (!this.connected) return false;
    let id = '';
    if (cb) { id = String(this.nextAck++); this.acks.set(Number(id), cb); }
    const args = data === undefined ? [name] : [name, data];
    this.ws.send('42' + id + JSON.stringify(args));
    return true;
  }
}

// ---- page ------------------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const ui = {
  conn: $('conn'), online: $('online'), status: $('status'), interests: $('interests'),
  start: $('start'), next: $('next'), stop: $('stop'), log: $('log'), typing: $('typing'),
  text: $('text'), send: $('send'), chat: $('chat'), controls: $('controls'),
  local: $('local'), remote: $('remote'),
};
let iceServers = [];
let noPartnerNoticeAfter = 15; // seconds; the server's config says how long
let localStream = null;
let pc = null;
let pendingCandidates = [];
let searching = false;
let matched = false;
let typingSent = false;
let typingTimer = 0;
let lonelyTimer = 0;

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

line.on('connect', () => { if (searching || matched) find(); });
line.on('disconnect', () => { closePeer(); if (matched) { matched = false; searching = true; } });
line.on('online', (d) => { ui.online.textContent = `${d.count} online`; });
line.on('matched', (d) => {
  searching = false;
  matched = true;
  clearTimeout(lonelyTimer);
  ui.log.textContent = '';
  const common = d.common && d.common.length ? ` You both like: ${d.common.join(', ')}.` : '';
  setStatus(`You're talking to a stranger. Say hi!${common}`);
  logLine('sys', 'Connected to a stranger.');
  setState('matched');
  startPeer(d.initiator);
  ui.text.focus();
});
line.on('partner_left', () => {
  logLine('sys', 'The stranger left.');
  showTyping(false);
  closePeer();
  matched = false;
  setStatus('The stranger left. Looking for someone new…');
  find();
});
line.on('message', (d) => { showTyping(false); logLine('them', d.text); });
line.on('typing', (d) => showTyping(!!d.on));
line.on('signal', (d) => onSignal(d.data));

function showTyping(on) { ui.typing.hidden = !on; }

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
ui.stop.addEventListener('click', () => {
  closePeer();
  showTyping(false);
  matched = false;
  searching = false;
  clearTimeout(lonelyTimer);
  line.emit('stop', undefined, () => {});
  setState('idle');
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
function startPeer(initiator) {
  closePeer();
  pc = new RTCPeerConnection({ iceServers });
  document.body.dataset.rtc = 'new';
  const mine = pc;
  pc.onconnectionstatechange = () => { if (pc === mine) document.body.dataset.rtc = pc.connectionState; };
  pc.onicecandidate = (e) => { if (e.candidate) line.emit('signal', { data: { candidate: e.candidate.toJSON() } }); };
  pc.ontrack = (e) => { ui.remote.srcObject = e.streams[0] || new MediaStream([e.track]); };
  if (localStream) localStream.getTracks().forEach((t) => pc.addTrack(t, localStream));
  else { pc.addTransceiver('video', { direction: 'recvonly' }); pc.addTransceiver('audio', { direction: 'recvonly' }); }
  if (initiator) {
    pc.createOffer().then((offer) => pc.setLocalDescription(offer)).then(() => {
      line.emit('signal', { data: { sdp: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } } });
    }).catch(() => setStatus('Could not start the video connection.', true));
  }
}

async function onSignal(data) {
  if (!pc || !data) return;
  const mine = pc;
  try {
    if (data.sdp) {
      await pc.setRemoteDescription(data.sdp);
      for (const c of pendingCandidates) await pc.addIceCandidate(c);
      pendingCandidates = [];
      if (data.sdp.type === 'offer' && pc === mine) {
        await pc.setLocalDescription(await pc.createAnswer());
        line.emit('signal', { data: { sdp: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } } });
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
}

const config = fetch('config.json', { credentials: 'omit', cache: 'no-store' })
  .then((r) => r.json())
  .then((c) => {
    iceServers = c.iceServers || [];
    if (typeof c.noPartnerNoticeAfter === 'number' && c.noPartnerNoticeAfter > 0) noPartnerNoticeAfter = c.noPartnerNoticeAfter;
  })
  .catch(() => {});
setState('idle');
