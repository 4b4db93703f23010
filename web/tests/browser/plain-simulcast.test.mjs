// Issue 9: simulcast from a page that does not use the SDK. The publisher
// page calls addTransceiver(track, { sendEncodings: [q, h, f] }) and talks
// to the server with its signaling messages only; a subscriber page (plain
// API too) decodes the video, first the best layer (it said nothing of how
// it shows it), then, once it tells the server with `track-settings` that
// it shows a 160x90 tile, a smaller one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { session, hostPageServer, waitInPage } from './harness.mjs';
import { inboundVideo, outboundVideo, until, grows, sdkParticipant } from './sdk-page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PAGE = fs.readFileSync(path.join(here, 'fixtures/plain-simulcast.html'), 'utf8');

test('simulcast from the plain browser API (addTransceiver with three rids) reaches a plain subscriber', async (t) => {
  const s = await session(t);
  const host = await hostPageServer(() => PAGE);
  s.defer(host.close);
  const ws = `ws://127.0.0.1:${s.server.port}/ws`;
  const room = `plain-simulcast-${Date.now()}`;
  const pub = await s.participant(`${host.origin}/?role=pub&room=${room}&ws=${encodeURIComponent(ws)}`, { name: 'plain publisher' });
  const sub = await s.participant(`${host.origin}/?role=sub&room=${room}&ws=${encodeURIComponent(ws)}`, { name: 'plain subscriber' });
  const pcs = '[window.plain.pc]';

  // Chromium itself may leave its top encoding off (CPU or bandwidth
  // limits, shown as `limit`): two encodings give the subscriber a
  // smaller one to move to. (This page does not apply dynacast requests.)
  const sent = await until(async () => {
    const o = await outboundVideo(pub, pcs);
    return Object.values(o).filter((e) => e.bytes > 0).length >= 2 ? o : null;
  }, 'the plain publisher sends two of its encodings');
  console.log(`plain publisher: ${Object.entries(sent.value).map(([r, o]) => `${r} ${o.frameWidth}px (limit: ${o.limit})`).join(', ')}`);

  // Without track-settings the subscriber gets the best layer it can:
  // above the smallest the publisher sends. (Chromium may start with the
  // smallest alone and add the others as its bandwidth estimate grows.)
  const best = await until(async () => {
    const v = await inboundVideo(sub, pcs);
    const widths = Object.values(await outboundVideo(pub, pcs))
      .filter((e) => e.bytes > 0 && e.frameWidth > 0)
      .map((e) => e.frameWidth);
    return v.frames > 10 && widths.length >= 2 && v.frameWidth > Math.min(...widths) ? v : null;
  }, 'the plain subscriber decodes a layer above the smallest sent');
  console.log(`plain subscriber, no track-settings: ${best.value.frameWidth}x${best.value.frameHeight}`);
  assert.equal(await sub.evaluate(() => window.plain.remote.length), 1);
  // That estimate came from the plain subscriber's transport-wide
  // feedback, which the server decrypted itself: only the two plain pages
  // are connected so far.
  const metrics = await (await fetch(`${s.server.url}/metrics`)).text();
  const rtcpIn = Number(/^sfu_packets_own_srtcp_in_total (\S+)$/m.exec(metrics)?.[1]);
  assert.ok(rtcpIn > 0, `the plain pages' RTCP took the own SRTCP path (${rtcpIn})`);

  // Told it shows a small tile, it gets a smaller layer, still decoding.
  // (A tile smaller than any encoding: the smallest covers it, whatever
  // size Chromium's own adaptation gives each encoding.)
  await sub.evaluate(() => window.plain.showAt(160, 90));
  const smaller = await until(async () => {
    const v = await inboundVideo(sub, pcs);
    return v.frameWidth > 0 && v.frameWidth < best.value.frameWidth && v.frames > best.value.frames + 10 ? v : null;
  }, 'the plain subscriber moves to a smaller layer');
  console.log(`plain subscriber at 160x90: ${smaller.value.frameWidth}x${smaller.value.frameHeight} after ${smaller.ms} ms`);

  // Someone joins with a camera: the server offers it to both pages, the
  // plain publisher answers with its own code, and its three streams keep
  // flowing (its packets no longer name their rid by now).
  const joiner = await sdkParticipant(s, { room, name: 'joiner', camera: true });
  await until(async () => (await pub.evaluate(() => window.plain.remote.length)) === 1, 'the plain publisher receives the joiner');
  const remoteSdp = await pub.evaluate(() => window.plain.pc.remoteDescription.sdp);
  assert.match(remoteSdp, /a=simulcast:recv q;h;f/, "the server's new offer still asks for the three streams");
  const frames = (p) => async () => (await inboundVideo(p, pcs)).frames;
  const kept = await until(() => grows(frames(sub), 2000, 20), 'the plain subscriber keeps decoding after the renegotiation');
  const joined = await until(async () => {
    const v = await inboundVideo(joiner.page);
    return v.frames > 20 ? grows(async () => (await inboundVideo(joiner.page)).frames, 2000, 20) : null;
  }, 'the joiner, who publishes too, decodes the plain publisher');
  console.log(`after a renegotiation: plain subscriber at ${kept.value.after} frames, joiner at ${joined.value.after}`);
  const errors = await sub.evaluate(() => window.plain.log.filter((l) => l.startsWith('error')));
  assert.deepEqual(errors, [], 'no error from the server');
  await waitInPage(pub, () => window.plain.pc.connectionState === 'connected');
  s.passed();
});
