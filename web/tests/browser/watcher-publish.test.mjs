// Issue 8 (2): a page written against the plain browser API joins an SFU
// room as a watcher (it answers the server's offers), then starts publishing
// with `pc.addTrack()` on its existing connection. The browser reuses the
// transceivers the server offered for forwarding and offers them again as
// sendrecv; the server must take the media arriving on them and forward it:
// the others (demo pages on the SDK) decode the watcher's video and receive
// its audio.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { session, hostPageServer, joinDemo, waitInPage, waitForMediaFlow } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WATCHER = fs.readFileSync(path.join(here, 'fixtures/sfu-watcher.html'), 'utf8');
const watcherClient = '({ peerConnections: () => [window.watcher.pc] })';

/** In a demo page: what arrives from `id` (its camera video decoded, its audio packets). */
async function fromParticipant(page, id) {
  return page.evaluate(async (id) => {
    const c = window.demo.client;
    const tracks = c.tracksOf(id);
    const inbound = new Map();
    for (const pc of c.peerConnections()) (await pc.getStats()).forEach((s) => s.type === 'inbound-rtp' && inbound.set(s.trackIdentifier, s));
    const v = tracks.find((t) => t.track.kind === 'video');
    const a = tracks.find((t) => t.track.kind === 'audio');
    return {
      framesDecoded: (v && inbound.get(v.track.id)?.framesDecoded) ?? 0,
      audioPackets: (a && inbound.get(a.track.id)?.packetsReceived) ?? 0,
    };
  }, id);
}

test('a plain-API watcher starts publishing with addTrack on its connection and the others see and hear it', async (t) => {
  const s = await session(t);
  const room = `watch-${Date.now()}`;
  const joined = await joinDemo(t, s, { room, mode: 'sfu', names: ['Ann', 'Ben'] });
  if (!joined) return s.passed();
  const { pages: [ann, ben] } = joined;

  const host = await hostPageServer(() => WATCHER);
  t.after(host.close);
  const watcher = await s.participant(`${host.origin}/watcher.html?room=${room}&ws=${encodeURIComponent(`ws://127.0.0.1:${s.server.port}/ws`)}`, { name: 'watcher' });
  const watcherId = await waitInPage(watcher, () => window.watcher.id);

  // Watching: it decodes both publishers, having only answered.
  const watching = await waitForMediaFlow(watcher, { clientExpr: watcherClient });
  assert.ok(watching.video.frameWidth > 0);
  await waitInPage(watcher, () => document.querySelectorAll('#videos video').length >= 2 && [...document.querySelectorAll('#videos video')].every((v) => v.videoWidth > 0));
  const before = await watcher.evaluate(() => ({
    log: [...window.watcher.log],
    mids: window.watcher.pc.getTransceivers().map((t) => t.mid),
    sending: window.watcher.pc.getTransceivers().filter((t) => t.sender.track).length,
  }));
  assert.ok(!before.log.includes('offered'), `only answered so far: ${before.log}`);
  assert.equal(before.sending, 0);

  // Publishing with addTrack on the same connection.
  await watcher.evaluate(() => window.watcher.publish());
  await waitInPage(watcher, () => window.watcher.log.includes('got answer') && window.watcher.pc.signalingState === 'stable');
  // The track ids the SDP announces for them (a reused transceiver keeps its
  // sender's id, which is not the MediaStreamTrack's).
  const sdpTrackIds = await watcher.evaluate(() => {
    const sending = new Set(window.watcher.pc.getTransceivers().filter((t) => t.sender.track).map((t) => t.mid));
    const ids = [];
    for (const section of window.watcher.pc.localDescription.sdp.split(/\r\nm=/).slice(1)) {
      const mid = /a=mid:(\S+)/.exec(section)?.[1];
      const msid = /a=msid:\S+ (\S+)/.exec(section)?.[1];
      if (sending.has(mid) && msid) ids.push(msid);
    }
    return ids;
  });
  assert.equal(sdpTrackIds.length, 2, 'both sending sections carry an msid');
  const after = await watcher.evaluate(() =>
    window.watcher.pc.getTransceivers().filter((t) => t.sender.track).map((t) => ({ mid: t.mid, kind: t.sender.track.kind, current: t.currentDirection })),
  );
  // The browser put the tracks on transceivers the server had offered (the case this test is about).
  assert.equal(after.length, 2);
  for (const tr of after) {
    assert.ok(before.mids.includes(tr.mid), `${tr.kind} reuses a server-offered transceiver (mid ${tr.mid}; before: ${before.mids})`);
    assert.equal(tr.current, 'sendrecv');
  }

  // Ann and Ben decode the watcher's video and receive its audio.
  for (const page of [ann, ben]) {
    await waitInPage(page, (id) => document.querySelector(`[data-participant="${id}"] video`)?.videoWidth > 0, watcherId);
    let first = null;
    for (const deadline = Date.now() + 60000; ; ) {
      const got = await fromParticipant(page, watcherId);
      if (!first && got.framesDecoded > 0 && got.audioPackets > 0) first = got;
      if (first && got.framesDecoded > first.framesDecoded + 5 && got.audioPackets > first.audioPackets + 5) break;
      assert.ok(Date.now() < deadline, `the watcher's media keeps arriving: ${JSON.stringify(got)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const ids = await page.evaluate((id) => window.demo.client.tracksOf(id).map((t) => t.track.id), watcherId);
    assert.deepEqual(ids.sort(), [...sdpTrackIds].sort(), 'the tracks the watcher added');
  }
  // And it still watches.
  await waitForMediaFlow(watcher, { clientExpr: watcherClient });
  assert.deepEqual((await watcher.evaluate(() => window.watcher.log)).filter((l) => /failed|error/.test(l)), []);
  s.passed();
});
