// Issue 9: simulcast from the SDK, adaptive stream and dynacast, with real
// Chromium processes. One publisher sends its 1280x720 fake camera as three
// simulcast encodings (q/h/f); one subscriber shows it as a 160x90 tile, the
// other at 1280x720. The small tile receives a smaller picture than the
// large one; a hidden tile receives no video until it is shown again; when
// nobody shows it large, the publisher stops sending its `f` encoding, and
// sends it again when someone does. Times are printed, not asserted
// (Chromium also adapts resolution under CPU load: only relations are).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session } from './harness.mjs';
import { sdkParticipant, setTiles, inboundVideo, outboundVideo, until, stays, grows } from './sdk-page.mjs';

const SMALL = { width: 160, height: 90 };
const LARGE = { width: 1280, height: 720 };

test('simulcast: each subscriber gets the layer its tile needs, a hidden tile gets none, dynacast pauses the top layer', async (t) => {
  const s = await session(t);
  const room = `simulcast-${Date.now()}`;
  const pub = await sdkParticipant(s, { room, name: 'Pub', camera: true, publish: { simulcast: true } });
  const small = await sdkParticipant(s, { room, name: 'Small', tile: SMALL });
  const large = await sdkParticipant(s, { room, name: 'Large', tile: LARGE });

  // The publisher's camera has three encodings, lowest first; the ones
  // its subscribers need (q for the small tile, f for the large one) flow.
  // (h may be paused by dynacast before it ever sends: nobody needs it.)
  const rids = await pub.page.evaluate(() =>
    window.t.client.peerConnections()[0].getSenders().find((x) => x.track?.kind === 'video')?.getParameters().encodings.map((e) => e.rid),
  );
  assert.deepEqual(rids, ['q', 'h', 'f']);
  const sent = await until(async () => {
    const o = await outboundVideo(pub.page);
    return o.q?.bytes > 0 && o.f?.bytes > 0 ? o : null;
  }, 'the publisher sends rids q and f');
  console.log(`publisher encodings: ${Object.entries(sent.value).map(([r, o]) => `${r} ${o.frameWidth}px ${o.mode}`).join(', ')}`);

  // (a) The small tile's picture is smaller than the large one's.
  const sizes = await until(async () => {
    const [a, b] = [await inboundVideo(small.page), await inboundVideo(large.page)];
    return a.frames > 0 && b.frames > 0 && a.frameWidth > 0 && a.frameWidth < b.frameWidth ? { small: a, large: b } : null;
  }, 'the small tile receives a smaller picture than the large one');
  console.log(`received: small tile ${sizes.value.small.frameWidth}x${sizes.value.small.frameHeight}, large tile ${sizes.value.large.frameWidth}x${sizes.value.large.frameHeight} (${sizes.ms} ms after both joined)`);

  // A hidden tile stops receiving video; shown again, it receives again.
  const smallBytes = async () => (await inboundVideo(small.page)).bytes;
  await setTiles(small.page, 'hidden');
  const stopped = await until(() => stays(smallBytes, 2000), 'the hidden tile stops receiving video bytes');
  console.log(`hidden tile: video stopped ${stopped.ms} ms after hiding (measured over 2 s windows)`);
  await setTiles(small.page, SMALL);
  const resumed = await until(() => grows(smallBytes, 1000, 1000), 'the tile shown again receives video');
  const framesAfter = await until(async () => {
    const v = await inboundVideo(small.page);
    return v.frames > sizes.value.small.frames + 10 ? v : null;
  }, 'the tile shown again decodes new frames');
  console.log(`tile shown again: video back after ${resumed.ms} ms, decoding at ${framesAfter.value.frameWidth}px`);

  // (b) Dynacast: with both tiles small, nobody needs `f`; the publisher stops it.
  await setTiles(large.page, SMALL);
  const fBytes = async () => (await outboundVideo(pub.page)).f?.bytes ?? 0;
  const paused = await until(async () => {
    const o = await outboundVideo(pub.page);
    if (o.f?.active === false) return { how: 'inactive' };
    const still = await stays(fBytes, 1500);
    return still ? { how: 'no bytes' } : null;
  }, 'the publisher stops sending rid f when no tile is large');
  console.log(`dynacast: rid f stopped (${paused.value.how}) ${paused.ms} ms after the last large tile shrank`);
  // The other encodings still flow to the small tiles.
  assert.ok(await grows(async () => (await outboundVideo(pub.page)).q?.bytes ?? 0, 1500), 'rid q still flows');
  assert.ok(await grows(async () => (await inboundVideo(large.page)).bytes, 1500), 'the shrunk tile still receives video');

  // A tile grows large again: `f` resumes and that subscriber moves up,
  // without a freeze (the server keeps forwarding the small layer until a
  // keyframe of the large one arrives).
  const freezesBefore = (await inboundVideo(large.page)).freezes;
  await setTiles(large.page, LARGE);
  const back = await until(async () => {
    const o = await outboundVideo(pub.page);
    return o.f?.active !== false && (await grows(fBytes, 1000, 1000)) ? o : null;
  }, 'the publisher sends rid f again');
  const up = await until(async () => {
    const [a, b] = [await inboundVideo(small.page), await inboundVideo(large.page)];
    return b.frameWidth > a.frameWidth ? { small: a, large: b } : null;
  }, 'the large tile receives a larger picture than the small one again');
  console.log(`dynacast: rid f back after ${back.ms} ms; large tile at ${up.value.large.frameWidth}px after ${back.ms + up.ms} ms, small tile at ${up.value.small.frameWidth}px`);
  assert.equal(up.value.large.freezes, freezesBefore, 'no freeze while moving up');
  const events = await pub.page.evaluate(() => window.t.events);
  assert.ok(
    events.some((e) => e.source === 'camera' && e.encodings.some((x) => x.rid === 'f' && x.active === false)),
    `the SDK applied the server's pause of f: ${JSON.stringify(events)}`,
  );
  s.passed();
});

// Each join renegotiates everyone's connection (the server offers the new
// tracks). Browsers name a simulcast stream in its packets only until the
// server acknowledges it, so a server that lost track of the streams at a
// renegotiation stalled every subscriber after one keyframe.
test('simulcast: participants who all publish their cameras keep decoding each other across joins', async (t) => {
  const s = await session(t);
  const room = `simulcast-all-${Date.now()}`;
  const a = await sdkParticipant(s, { room, name: 'A', camera: true, tile: LARGE });
  const b = await sdkParticipant(s, { room, name: 'B', camera: true, tile: LARGE });
  const c = await sdkParticipant(s, { room, name: 'C', camera: true, tile: SMALL });
  // Simulcast is the SDK's default.
  const rids = await a.page.evaluate(() =>
    window.t.client.peerConnections()[0].getSenders().find((x) => x.track?.kind === 'video')?.getParameters().encodings.map((e) => e.rid),
  );
  assert.deepEqual(rids, ['q', 'h', 'f']);
  const frames = (p) => async () => (await inboundVideo(p.page)).frames;
  for (const [name, p, others] of [['A', a, 2], ['B', b, 2], ['C', c, 2]]) {
    const got = await until(async () => {
      const n = await p.page.evaluate(() => document.querySelectorAll('video').length);
      return n === others ? grows(frames(p), 2000, 20) : null;
    }, `${name} decodes the other two cameras`);
    console.log(`${name}: ${got.value.after} frames decoded, still growing (${got.ms} ms)`);
  }
  // The last to join showed both at a small size: a smaller layer than A's large tiles get.
  const sizes = await until(async () => {
    const [va, vc] = [await inboundVideo(a.page), await inboundVideo(c.page)];
    return vc.frameWidth > 0 && vc.frameWidth < va.frameWidth ? { a: va.frameWidth, c: vc.frameWidth } : null;
  }, 'the small tiles get a smaller layer than the large ones');
  console.log(`largest decoded width: A (large tiles) ${sizes.value.a}px, C (small tiles) ${sizes.value.c}px`);
  s.passed();
});
