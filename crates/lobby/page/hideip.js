// tutti lobby page: "hide my IP". With it on, the RTCPeerConnection gathers relay candidates only (the
// lobby's TURN relay), and nothing that could carry one of this browser's addresses leaves the page: host
// and server-reflexive candidates are dropped, trickled or in the SDP; a relay candidate's related address
// (which some browsers fill with the public address) is blanked; the SDP's connection lines say 0.0.0.0.
// Also the words next to the switch: what the partner can see in each mode.
'use strict';

const HideIp = (() => {
  /** `host`, `srflx`, `prflx` or `relay` (empty if the line has no type). */
  const type = (line) => (/ typ (\w+)/.exec(line) || [])[1] || '';
  const blankRelated = (line) => line.replace(/ raddr \S+ rport \d+/, ' raddr 0.0.0.0 rport 0');

  /** The SDP to send: relay candidates only, related and connection addresses blanked. */
  function sdp(text) {
    return text.split('\r\n')
      .filter((l) => !l.startsWith('a=candidate:') || type(l) === 'relay')
      .map((l) => (l.startsWith('a=candidate:') ? blankRelated(l) : l))
      .map((l) => l.replace(/^c=IN IP4 \S+/, 'c=IN IP4 0.0.0.0').replace(/^c=IN IP6 \S+/, 'c=IN IP6 ::')
        .replace(/^a=rtcp:(\d+) IN IP4 \S+/, 'a=rtcp:$1 IN IP4 0.0.0.0').replace(/^a=rtcp:(\d+) IN IP6 \S+/, 'a=rtcp:$1 IN IP6 ::'))
      .join('\r\n');
  }

  /** A trickled candidate (RTCIceCandidateInit) to send, or null to drop it. */
  function candidate(c) {
    if (!c.candidate) return c; // the empty one ends the candidates: no address in it
    if (type(c.candidate) !== 'relay') return null;
    return { ...c, candidate: blankRelated(c.candidate) };
  }

  /** What the partner can see, for the switch's state: forced, unavailable, on or off. */
  function note(mode) {
    const direct = 'video and sound go directly between the two browsers, so the stranger\'s browser can learn your IP address (public and local) once you are matched, even without a camera.';
    const relayed = 'the stranger sees only the relay\'s address, never yours. The relay, run by this lobby, sees your address, as the lobby itself does.';
    return {
      forced: `This lobby always hides your IP address: video and sound go through its relay, so ${relayed}`,
      unavailable: `Not available here: this lobby has no relay. Without one, ${direct}`,
      on: `On: video and sound go through this lobby's relay; ${relayed} The picture may lag a little more.`,
      off: `Off: ${direct}`,
    }[mode] || '';
  }

  return { type, sdp, candidate, note };
})();
