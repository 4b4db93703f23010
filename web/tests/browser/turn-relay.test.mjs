// The TURN credentials the server hands out in `joined` are accepted by a
// real coturn running with `use-auth-secret`: two relay-only peer connections
// in Chromium connect through it. Tampered credentials are refused (401).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session } from './harness.mjs';
import { freeUdpPort, startCoturn } from './coturn.mjs';

const SECRET = 'turn-test-secret';

/**
 * In the page: join a room, take `iceServers` from `joined` (optionally
 * spoiling the credential), and connect two relay-only peer connections
 * with a data channel. Returns what happened.
 */
function relayCall(spoil) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${location.host}/ws`);
    ws.onmessage = async (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === 'registered') ws.send(JSON.stringify({ type: 'join', room: 'turn-room', name: 'T' }));
      if (msg.type !== 'joined') return;
      const iceServers = msg.iceServers.map((s) => (spoil && s.credential ? { ...s, credential: 'x' + s.credential } : s));
      const cfg = { iceServers, iceTransportPolicy: 'relay' };
      const a = new RTCPeerConnection(cfg);
      const b = new RTCPeerConnection(cfg);
      const errors = [];
      const relay = [];
      for (const [from, to] of [[a, b], [b, a]]) {
        from.onicecandidate = (e) => {
          if (e.candidate) {
            relay.push(e.candidate.candidate);
            to.addIceCandidate(e.candidate).catch(() => {});
          }
        };
        from.onicecandidateerror = (e) => errors.push(e.errorCode);
        from.onicegatheringstatechange = () => {
          const gathered = a.iceGatheringState === 'complete' && b.iceGatheringState === 'complete';
          if (gathered && relay.length === 0) setTimeout(() => done({ opened: false }), 500);
        };
      }
      const done = (result) => resolve({ iceServers: msg.iceServers, relay, errors, ...result });
      // A generous bound for a loaded machine; spoiled credentials end sooner (no relay candidate).
      setTimeout(() => done({ opened: false }), 60000);
      b.ondatachannel = (e) => { e.channel.onmessage = (m) => done({ opened: true, echoed: m.data, pair: null }); };
      const dc = a.createDataChannel('relay');
      dc.onopen = () => dc.send('through the relay');
      await a.setLocalDescription();
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription();
      await a.setRemoteDescription(b.localDescription);
    };
  });
}

test('TURN credentials from joined work with coturn use-auth-secret', async (t) => {
  const port = await freeUdpPort();
  const coturnLog = await startCoturn(t, port, SECRET);
  const s = await session(t, {
    env: {
      SFU_ROOMS__DEFAULT_MODE: 'p2p',
      SFU_ICE__TURN__URLS: `turn:127.0.0.1:${port}?transport=udp`,
      SFU_ICE__TURN__SECRET: SECRET,
    },
  });
  const page = await s.participant('/healthz', { name: 'turn' });

  const good = await page.evaluate(relayCall, false);
  assert.equal(good.iceServers.length, 1);
  assert.match(good.iceServers[0].username, /^\d+:/, 'username is expiry:identity');
  assert.ok(good.relay.some((c) => / typ relay /.test(c)), `a relay candidate: ${good.relay.join(' | ')}`);
  assert.ok(good.relay.every((c) => / typ relay /.test(c)), 'relay-only');
  assert.equal(good.opened, true, `data channel over the relay opened\n${coturnLog().slice(-3000)}`);
  assert.equal(good.echoed, 'through the relay');

  const bad = await page.evaluate(relayCall, true);
  assert.equal(bad.opened, false, 'spoiled credentials must not connect');
  assert.equal(bad.relay.length, 0, 'no relay candidate with spoiled credentials');
  assert.ok(bad.errors.includes(401), `coturn answered 401: ${bad.errors}`);
  s.passed();
});
