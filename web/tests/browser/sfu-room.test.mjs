// Issue 3: an SFU room with real Chromium processes on the demo page. Each
// participant has one peer connection, to the server's one media port; each
// decodes the others' video and receives their audio; a late joiner decodes
// every publisher's video from a keyframe the server asked for on its behalf
// (the time from its join to its first decoded frame is printed, not
// asserted: see docs/benchmarks.md); a leaver's tiles go and the server frees
// its state.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, launchBrowser, waitInPage, waitForMediaFlow, sleep } from './harness.mjs';

/** Records, in the page's own clock, when the join request went out and
 * when the first remote video frame was decoded (a tile's video has a size). */
function timingProbe() {
  const t = { join: 0, frame: 0 };
  // @ts-ignore
  window.__sfuTiming = t;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      if (!t.join && typeof data === 'string' && JSON.parse(data).type === 'join') t.join = performance.now();
    } catch {}
    return send.call(this, data);
  };
  const timer = setInterval(() => {
    const videos = document.querySelectorAll('[data-participant] video');
    for (const v of videos) {
      if (/** @type {HTMLVideoElement} */ (v).videoWidth > 0) {
        t.frame = performance.now();
        clearInterval(timer);
        return;
      }
    }
  }, 5);
}

/** The remote ports of every selected ICE candidate pair of the page's client. */
async function selectedRemotePorts(page) {
  return page.evaluate(async () => {
    const ports = [];
    for (const pc of window.demo.client.peerConnections()) {
      const report = await pc.getStats();
      const byId = new Map();
      report.forEach((s) => byId.set(s.id, s));
      report.forEach((s) => {
        if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
        const pair = byId.get(s.selectedCandidatePairId);
        const remote = pair && byId.get(pair.remoteCandidateId);
        if (remote) ports.push(remote.port);
      });
    }
    return ports;
  });
}

/** A counter from the server's Prometheus metrics. */
async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  assert.ok(m, `metric ${name} present`);
  return Number(m[1]);
}

async function serverStats(url) {
  const r = await fetch(`${url}/api/stats`);
  assert.equal(r.status, 200);
  return r.json();
}

/** Waits until the page decodes video in a tile of each of `ids`. */
async function waitForTiles(page, ids) {
  for (const id of ids) {
    await waitInPage(page, (q) => document.querySelector(q)?.videoWidth > 0, `[data-participant="${id}"] video`);
  }
}

test('SFU room: three browsers, one server port, a late joiner, clean leave', async (t) => {
  const s = await session(t);
  const mediaPort = Number(/media UDP listening on 127\.0\.0\.1:(\d+)/.exec(s.server.logs())?.[1]);
  assert.ok(mediaPort > 0, 'the server logs its media UDP port');

  const room = `sfu-room-${Date.now()}`;
  const url = (name) => `/?room=${room}&mode=sfu&name=${name}&autojoin=1`;
  const names = ['Ann', 'Ben', 'Cat'];
  const pages = [];
  for (const name of names) {
    pages.push(await s.participant(url(name), { name }));
  }
  const ids = [];
  for (const p of pages) ids.push(await waitInPage(p, () => window.demo.client?.room && window.demo.client.id));

  // Everyone decodes both others' video and receives audio, over one
  // connection each, all to the same server port.
  for (const [i, page] of pages.entries()) {
    const stats = await waitForMediaFlow(page);
    assert.ok(stats.video.frameWidth > 0, 'decoded video has a width');
    await waitForTiles(page, ids.filter((_, j) => j !== i));
    const pcs = await page.evaluate(() => window.demo.client.peerConnections().length);
    assert.equal(pcs, 1, 'one peer connection per participant');
    let ports = [];
    for (const deadline = Date.now() + 60000; ports.length === 0 && Date.now() < deadline; ) {
      ports = await selectedRemotePorts(page);
      if (ports.length === 0) await sleep(250);
    }
    assert.deepEqual(ports, [mediaPort], 'the connection uses the server media port');
  }
  // Audio from both others: two inbound audio streams with packets.
  for (const page of pages) {
    await waitInPage(page, async () => {
      let n = 0;
      for (const pc of window.demo.client.peerConnections()) {
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.packetsReceived > 0) n++;
        });
      }
      return n >= 2;
    });
  }
  // The server's sender reports arrive for what it forwards (Chromium
  // builds remote-outbound-rtp from them), and the forwarded media left
  // through the server's own SRTP path.
  const reported = await waitInPage(pages[0], async () => {
    const kinds = new Set();
    for (const pc of window.demo.client.peerConnections()) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'remote-outbound-rtp' && s.packetsSent > 0) kinds.add(s.kind);
      });
    }
    return kinds.has('audio') && kinds.has('video') ? [...kinds].sort() : null;
  });
  assert.deepEqual(reported, ['audio', 'video'], 'sender reports for forwarded audio and video');
  assert.ok((await metric(s.server.url, 'sfu_packets_own_srtp_total')) > 0, 'forwarded media took the own SRTP path');
  // Chromium negotiates AES_CM_128_HMAC_SHA1_80: the server decrypts what
  // it publishes with its own SRTP path too.
  assert.ok((await metric(s.server.url, 'sfu_packets_own_srtp_in_total')) > 0, 'published media took the own inbound SRTP path');
  // And the RTCP it sends, its sender reports included: the server's
  // receiver reports answer them, which is how Chromium measures the round
  // trip of what it publishes (a report whose last-SR fields are empty
  // measures nothing). Several measurements: sender reports read after
  // the connection came up, by the server's own SRTCP path.
  const rtcpIn = await metric(s.server.url, 'sfu_packets_own_srtcp_in_total');
  assert.ok(rtcpIn > 0, `RTCP took the own inbound SRTCP path (${rtcpIn})`);
  const measured = await waitInPage(pages[0], async () => {
    let most = 0;
    for (const pc of window.demo.client.peerConnections()) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'remote-inbound-rtp') most = Math.max(most, s.roundTripTimeMeasurements || 0);
      });
    }
    return most >= 3 ? most : null;
  });
  assert.ok(measured >= 3, 'round trips measured from the server\'s receiver reports');

  // The stats panel shows the server's view of Ann's downlink: its
  // estimate from her browser's transport-cc feedback, and the layer of
  // each video she gets.
  await pages[0].click('button[data-panel="stats"]');
  const view = await waitInPage(pages[0], () => {
    const t = document.querySelector('.stats .server-view')?.textContent ?? '';
    const videos = t.split('Videos: ')[1] ?? '';
    return /estimated at \d+ kb\/s/.test(t) && videos.includes('Ben ') && videos.includes('Cat ') ? t : null;
  }, undefined, 60000);
  console.log(`Ann's stats panel: ${view}`);

  const before = await serverStats(s.server.url);
  assert.equal(before.media.connections, 3);
  const keyframeRequestsBefore = await metric(s.server.url, 'sfu_keyframe_requests_sent_total');

  // A fourth joiner: from its join request to its first decoded remote
  // frame, measured in the page.
  const late = await launchBrowser();
  s.defer(late.close);
  await late.page.addInitScript(timingProbe);
  await late.page.goto(`${s.server.url}${url('Dan')}`);
  const danId = await waitInPage(late.page, () => window.demo.client?.room && window.demo.client.id);
  const timing = await waitInPage(late.page, () => {
    const t = window.__sfuTiming;
    return t.join && t.frame ? { join: t.join, frame: t.frame } : null;
  });
  const joinToVideo = timing.frame - timing.join;
  console.log(`fourth joiner: first remote video frame ${Math.round(joinToVideo)} ms after joining`);
  await waitForTiles(late.page, ids);
  // It decodes each of the three publishers' video, starting from a keyframe
  // (a VP8 decoder shows nothing before one), which the server asked the
  // publishers for when the new legs came up.
  const keyframes = await waitInPage(late.page, async () => {
    const out = [];
    for (const pc of window.demo.client.peerConnections()) {
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 0) out.push(r.keyFramesDecoded);
      });
    }
    return out.length === 3 ? out : null;
  }, undefined, 60000);
  assert.ok(keyframes.every((k) => k >= 1), `each decoded stream has a keyframe: ${keyframes}`);
  assert.ok((await metric(s.server.url, 'sfu_keyframe_requests_sent_total')) > keyframeRequestsBefore, 'the server asked for keyframes for the new legs');
  for (const page of pages) await waitForTiles(page, [danId]);
  const during = await serverStats(s.server.url);
  assert.equal(during.media.connections, 4);

  // Dan leaves: his tile goes from every page, the server frees his state.
  await late.page.evaluate(() => window.demo.client.leave());
  for (const page of pages) {
    await waitInPage(page, (q) => !document.querySelector(q), `[data-participant="${danId}"]`);
  }
  let after = null;
  for (const deadline = Date.now() + 60000; Date.now() < deadline; ) {
    after = await serverStats(s.server.url);
    if (
      after.media.connections === before.media.connections &&
      after.signaling.participants === before.signaling.participants &&
      after.media.tracks === before.media.tracks
    ) {
      break;
    }
    await sleep(250);
  }
  assert.equal(after.signaling.participants, before.signaling.participants);
  assert.equal(after.media.connections, before.media.connections);
  assert.equal(after.media.tracks, before.media.tracks);
  // The others keep receiving each other after the renegotiation.
  for (const page of pages) await waitForMediaFlow(page);
  s.passed();
});
