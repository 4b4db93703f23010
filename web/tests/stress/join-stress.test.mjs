// Issue 8 (8): four participants join one SFU room through the demo page at
// the same moment, round after round, and every participant must receive
// every other's video (frames decoded) and audio (packets received) each
// time. It repeats JOIN_STRESS_ROUNDS times (default 20); ./test.sh runs it
// with 2. Each round's time from the joins to full media is printed, and a
// failed round's connection and signaling state is printed before the test
// fails, after all rounds ran (so a run says how many of N came up).
//
//   unshare -n bash -c 'ip link set lo up && node --test web/tests/stress/'

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, launchBrowser, waitInPage, sleep } from '../browser/harness.mjs';

const ROUNDS = Number(process.env.JOIN_STRESS_ROUNDS ?? 20);
const NAMES = ['Ann', 'Ben', 'Cat', 'Dan'];
/** How long one round may take before it counts as failed (a loaded 2-core machine). */
const ROUND_TIMEOUT_MS = Number(process.env.JOIN_STRESS_TIMEOUT_MS ?? 90000);

/** Records, in the page, every signaling frame's type and direction with a time. */
function recordSignaling() {
  const log = [];
  window.__signals = log;
  const t0 = performance.now();
  const Native = WebSocket;
  const entry = (dir, data) => {
    try {
      const m = JSON.parse(data);
      const extra = m.type === 'ice-candidate' ? (m.candidate ? '' : ' (end)') : '';
      log.push(`${Math.round(performance.now() - t0)}ms ${dir} ${m.type}${extra}`);
    } catch {}
  };
  // The SDK's errors and connection states, once the demo page makes its client.
  let demo = null;
  Object.defineProperty(window, 'demo', {
    configurable: true,
    get: () => demo,
    set(v) {
      let client = v?.client ?? null;
      demo = v;
      Object.defineProperty(v, 'client', {
        get: () => client,
        set(c) {
          client = c;
          c?.on('error', (e) => log.push(`${Math.round(performance.now() - t0)}ms error ${e.code}: ${e.message}`));
          c?.on('connection-state', (e) => log.push(`${Math.round(performance.now() - t0)}ms connection ${e.state}`));
          c?.on('connection-recovery', (e) => log.push(`${Math.round(performance.now() - t0)}ms recovery ${e.action}`));
        },
      });
    },
  });
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => entry('<-', e.data));
    }
    send(data) {
      entry('->', data);
      return super.send(data);
    }
  };
}

/** In the page: the `others` whose camera video or microphone audio is not arriving yet. */
async function missingMedia(others) {
  const c = window.demo?.client;
  if (!c?.room) return others.map((id) => `${id}:not-joined`);
  const inbound = new Map();
  for (const pc of c.peerConnections()) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp') inbound.set(s.trackIdentifier, s);
    });
  }
  const missing = [];
  for (const id of others) {
    const tracks = c.tracksOf(id);
    const video = tracks.find((t) => t.source === 'camera');
    const audio = tracks.find((t) => t.source === 'microphone');
    if (!video || !(inbound.get(video.track.id)?.framesDecoded > 0)) missing.push(`${id.slice(0, 6)}:video`);
    if (!audio || !(inbound.get(audio.track.id)?.packetsReceived > 0)) missing.push(`${id.slice(0, 6)}:audio`);
  }
  return missing;
}

/** In the page: the state of its connection, for the report of a failed round. */
function connectionReport() {
  const mlines = (d) => (d ? d.sdp.split(/\r?\n/).filter((l) => /^(m=|a=mid:|a=(sendrecv|sendonly|recvonly|inactive)$)/.test(l)).join(' ').replace(/ m=/g, ' | m=') : null);
  const c = window.demo?.client;
  const pcs = c ? c.peerConnections() : [];
  return {
    id: c?.id?.slice(0, 6),
    pcs: pcs.map((pc) => ({
      connection: pc.connectionState,
      ice: pc.iceConnectionState,
      gathering: pc.iceGatheringState,
      signaling: pc.signalingState,
      transceivers: pc.getTransceivers().map((t) => `${t.mid}:${t.direction}/${t.currentDirection}:${t.receiver.track.kind}:${t.sender.track ? 'track' : '-'}`),
      local: mlines(pc.currentLocalDescription),
      remote: mlines(pc.currentRemoteDescription),
      pendingRemote: mlines(pc.pendingRemoteDescription),
    })),
    signals: (window.__signals ?? []).length > 90 ? [...window.__signals.slice(0, 60), '…', ...window.__signals.slice(-30)] : window.__signals,
  };
}

test(`four participants join an SFU room at once, ${ROUNDS} rounds: everyone receives everyone`, { timeout: ROUNDS * (ROUND_TIMEOUT_MS + 30000) }, async (t) => {
  const s = await session(t);
  const browsers = [];
  for (const name of NAMES) {
    const b = await launchBrowser({ viewport: { width: 640, height: 400 } });
    s.defer(b.close);
    await b.page.addInitScript(recordSignaling);
    browsers.push({ name, ...b });
  }
  const results = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const room = `stress-${round}-${Date.now()}`;
    const start = Date.now();
    await Promise.all(browsers.map((b) => b.page.goto(`${s.server.url}/?room=${room}&mode=sfu&name=${b.name}&autojoin=1`, { waitUntil: 'domcontentloaded', timeout: ROUND_TIMEOUT_MS })));
    const ids = await Promise.all(browsers.map((b) => waitInPage(b.page, () => window.demo.client?.room && window.demo.client.id, undefined, ROUND_TIMEOUT_MS)));
    let missing = [];
    const deadline = start + ROUND_TIMEOUT_MS;
    for (;;) {
      missing = [];
      for (const [i, b] of browsers.entries()) {
        const m = await b.page.evaluate(missingMedia, ids.filter((_, j) => j !== i));
        if (m.length) missing.push(`${b.name} lacks ${m.join(' ')}`);
      }
      if (missing.length === 0 || Date.now() > deadline) break;
      await sleep(500);
    }
    const ms = Date.now() - start;
    // What the SDK had to repair on the way (a join crossing the server's first offer, ICE restarts).
    const notes = [];
    for (const b of browsers) {
      const events = await b.page.evaluate(() => (window.__signals ?? []).filter((l) => / (recovery|error) /.test(l)));
      if (events.length) notes.push(`${b.name}: ${events.map((l) => l.replace(/^\d+ms /, '')).join(', ')}`);
    }
    const note = notes.length ? ` (${notes.join('; ')})` : '';
    if (missing.length === 0) {
      console.log(`round ${round}/${ROUNDS}: everyone receives everyone after ${ms} ms${note}`);
      results.push({ round, ok: true, ms });
    } else {
      const reports = [];
      for (const b of browsers) reports.push({ name: b.name, ...(await b.page.evaluate(connectionReport)) });
      console.log(`round ${round}/${ROUNDS}: FAILED after ${ms} ms: ${missing.join('; ')}\n${JSON.stringify(reports, null, 1)}`);
      results.push({ round, ok: false, ms, missing });
    }
  }
  const passed = results.filter((r) => r.ok);
  const times = passed.map((r) => r.ms).sort((a, b) => a - b);
  console.log(`join stress: ${passed.length} of ${ROUNDS} rounds came up; time to full media median ${times[Math.floor(times.length / 2)] ?? '-'} ms, max ${times.at(-1) ?? '-'} ms`);
  assert.deepEqual(results.filter((r) => !r.ok).map((r) => `round ${r.round}: ${r.missing.join('; ')}`), []);
  s.passed();
});
