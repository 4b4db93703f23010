// A page written against the plain browser API adds its camera and
// microphone and offers them at the moment the server offers it the room's
// tracks: the two offers cross. The server ignores the page's offer
// (`offer_ignored`); the page applies the server's offer, which rolls its
// own back (perfect negotiation's polite side), answers, and offers again.
// That second offer carries the page's own transceivers, which Chromium
// numbered with its default header-extension ids before the server's offer
// arrived: it is refused by Chromium itself ("A BUNDLE group contains a
// codec collision for header extension") unless the server's offers use the
// same ids for the extensions both sides know. The others must then see and
// hear the page.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, hostPageServer, joinDemo, waitInPage } from './harness.mjs';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Crossing offer</title></head>
<body><script>
  const params = new URLSearchParams(location.search);
  const ws = new WebSocket(params.get('ws'));
  const send = (m) => ws.send(JSON.stringify(m));
  const pc = new RTCPeerConnection({ iceServers: [] });
  const log = [];
  let gotServerOffer;
  const serverOffer = new Promise((r) => (gotServerOffer = r));
  pc.onicecandidate = (e) => send({ type: 'ice-candidate', candidate: e.candidate });
  // The server's candidates wait until its offer is applied.
  let early = [];
  async function applied() {
    for (const c of early) await pc.addIceCandidate(c);
    early = null;
  }

  async function offer() {
    try {
      await pc.setLocalDescription();
      send({ type: 'offer', sdp: pc.localDescription });
      log.push('offered');
    } catch (e) {
      log.push('offer failed: ' + e);
    }
  }

  async function publishCrossing() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    // Our offer is made, then sent only once the server's is on its way:
    // they cross.
    await pc.setLocalDescription();
    const theirs = await serverOffer;
    send({ type: 'offer', sdp: pc.localDescription });
    log.push('offered (crossing)');
    // The polite side: the remote offer rolls ours back.
    await pc.setRemoteDescription({ type: 'offer', sdp: theirs });
    await applied();
    await pc.setLocalDescription();
    send({ type: 'answer', sdp: pc.localDescription });
    log.push('answered');
    // Our transceivers are not negotiated yet: offer them again.
    await offer();
  }

  ws.onopen = () => send({ type: 'join', room: params.get('room'), name: 'crosser', mode: 'sfu' });
  ws.onmessage = async (event) => {
    const m = JSON.parse(event.data);
    try {
      if (m.type === 'joined') {
        window.page.id = m.clientId;
        publishCrossing().catch((e) => log.push('publish failed: ' + e));
      } else if (m.type === 'offer') {
        if (!window.page.firstOfferSeen) {
          window.page.firstOfferSeen = true;
          gotServerOffer(m.sdp);
          return;
        }
        await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
        await pc.setLocalDescription();
        send({ type: 'answer', sdp: pc.localDescription });
        log.push('answered');
      } else if (m.type === 'answer') {
        await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
        log.push('got answer');
      } else if (m.type === 'ice-candidate' && m.candidate) {
        if (early) early.push(m.candidate);
        else await pc.addIceCandidate(m.candidate);
      } else if (m.type === 'error') {
        log.push('error ' + m.code);
      }
    } catch (e) {
      log.push(m.type + ' failed: ' + e);
    }
  };
  window.page = { pc, log, id: null, firstOfferSeen: false };
</script></body></html>`;

test('a plain-API page whose offer crosses the server\'s offer rolls back, offers again and is seen and heard', async (t) => {
  const s = await session(t);
  const room = `cross-${Date.now()}`;
  // Ann publishes first, so the server offers her tracks to the page as it joins.
  const joined = await joinDemo(t, s, { room, mode: 'sfu', names: ['Ann'] });
  if (!joined) return s.passed();
  const { pages: [ann] } = joined;
  await waitInPage(ann, () => window.demo.client.peerConnections().some((pc) => pc.getTransceivers().some((x) => x.sender.track && x.currentDirection)));

  const host = await hostPageServer(() => PAGE);
  t.after(host.close);
  const page = await s.participant(`${host.origin}/cross.html?room=${room}&ws=${encodeURIComponent(`ws://127.0.0.1:${s.server.port}/ws`)}`, { name: 'crosser' });
  const id = await waitInPage(page, () => window.page.id);

  // The crossing happened as intended, and the second offer was made and answered.
  await waitInPage(page, () => window.page.log.includes('got answer') || window.page.log.some((l) => /failed/.test(l)), undefined, 60000);
  const log = await page.evaluate(() => window.page.log);
  assert.ok(log.includes('offered (crossing)') && log.includes('error offer_ignored'), `the offers crossed: ${log}`);
  assert.deepEqual(log.filter((l) => /failed/.test(l)), [], 'no step failed');
  assert.ok(log.includes('got answer'), `the second offer was answered: ${log}`);

  // Ann decodes the page's video and receives its audio.
  await waitInPage(ann, (id) => document.querySelector(`[data-participant="${id}"] video`)?.videoWidth > 0, id, 60000);
  await waitInPage(ann, async (id) => {
    const c = window.demo.client;
    const audio = c.tracksOf(id).find((x) => x.track.kind === 'audio');
    if (!audio) return false;
    for (const pc of c.peerConnections()) {
      let got = 0;
      (await pc.getStats()).forEach((st) => st.type === 'inbound-rtp' && st.trackIdentifier === audio.track.id && (got = st.packetsReceived));
      if (got > 10) return true;
    }
    return false;
  }, id, 60000);
  // And the page receives Ann's video on the same connection.
  await waitInPage(page, async () => {
    let frames = 0;
    (await window.page.pc.getStats()).forEach((st) => st.type === 'inbound-rtp' && st.kind === 'video' && (frames += st.framesDecoded ?? 0));
    return frames > 0;
  }, undefined, 60000);
  s.passed();
});
