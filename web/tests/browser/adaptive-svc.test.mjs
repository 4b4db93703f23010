// Issue 9: SVC. The SDK publishes VP9 with scalabilityMode L3T3_KEY (one
// encoding, three spatial layers); the server forwards each subscriber the
// spatial layers its tile needs: a 160x90 tile decodes a smaller picture
// than a 1280x720 one, both decoding VP9.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session } from './harness.mjs';
import { sdkParticipant, inboundVideo, outboundVideo, until } from './sdk-page.mjs';

test('VP9 SVC (L3T3_KEY): two subscribers at different sizes get different spatial layers', async (t) => {
  const s = await session(t);
  const room = `svc-${Date.now()}`;
  const pub = await sdkParticipant(s, { room, name: 'Pub', camera: true, publish: { codec: 'VP9' } });
  const small = await sdkParticipant(s, { room, name: 'Small', tile: { width: 160, height: 90 } });
  const large = await sdkParticipant(s, { room, name: 'Large', tile: { width: 1280, height: 720 } });

  const out = await until(async () => {
    const o = await outboundVideo(pub.page);
    const only = Object.values(o);
    return only.length === 1 && only[0].bytes > 0 ? only[0] : null;
  }, 'the publisher sends one VP9 encoding');
  assert.equal(out.value.mode, 'L3T3_KEY', 'the encoding has three spatial and three temporal layers');

  const sizes = await until(async () => {
    const [a, b] = [await inboundVideo(small.page), await inboundVideo(large.page)];
    return a.frames > 5 && b.frames > 5 && a.frameWidth > 0 && a.frameWidth < b.frameWidth ? { small: a, large: b } : null;
  }, 'the small tile decodes a smaller VP9 picture than the large one');
  assert.match(sizes.value.small.codec, /VP9/i);
  assert.match(sizes.value.large.codec, /VP9/i);
  console.log(
    `VP9 SVC: publisher ${out.value.frameWidth}px; small tile ${sizes.value.small.frameWidth}x${sizes.value.small.frameHeight}, large tile ${sizes.value.large.frameWidth}x${sizes.value.large.frameHeight} (${sizes.ms} ms after joining)`,
  );
  // Both keep decoding.
  const before = [sizes.value.small.frames, sizes.value.large.frames];
  await until(async () => {
    const [a, b] = [await inboundVideo(small.page), await inboundVideo(large.page)];
    return a.frames > before[0] + 10 && b.frames > before[1] + 10;
  }, 'both subscribers keep decoding');
  s.passed();
});

// SVC dynacast: the publisher encodes only the spatial layers someone
// receives. With one 160x90 tile watching, the server tells the SDK that
// one spatial layer is enough (`publisher-encodings` with `spatialLayers`)
// and the encoder follows (L1T3 at a quarter of the size: less uplink and
// CPU); once a 1280x720 tile watches too, all three come back and that
// viewer decodes the full size.
test('VP9 SVC dynacast: the publisher drops the spatial layers nobody receives and brings them back when someone does', async (t) => {
  const s = await session(t);
  const room = `svc-dyn-${Date.now()}`;
  const pub = await sdkParticipant(s, { room, name: 'Pub', camera: true, publish: { codec: 'VP9' } });
  const only = async () => Object.values(await outboundVideo(pub.page))[0] ?? null;
  const full = await until(async () => {
    const o = await only();
    return o && o.mode === 'L3T3_KEY' && o.frameWidth >= 1280 ? o : null;
  }, 'the publisher sends L3T3_KEY at full size', 120000);
  const small = await sdkParticipant(s, { room, name: 'Small', tile: { width: 160, height: 90 } });

  const reduced = await until(async () => {
    const o = await only();
    const told = await pub.page.evaluate(() => window.t.events.filter((e) => e.encodings?.some((x) => x.spatialLayers === 1)).length);
    return told > 0 && o?.mode === 'L1T3' && o.frameWidth > 0 && o.frameWidth <= full.value.frameWidth / 4 ? o : null;
  }, 'with only a small tile watching, the publisher is told one spatial layer and encodes L1T3 at a quarter of the size', 120000);
  const smallBefore = (await inboundVideo(small.page)).frames;
  await until(async () => (await inboundVideo(small.page)).frames > smallBefore + 10, 'the small tile keeps decoding', 60000);
  console.log(`SVC dynacast: ${full.value.mode} ${full.value.frameWidth} px wide, then ${reduced.value.mode} ${reduced.value.frameWidth} px wide ${reduced.ms} ms after the small tile joined`);

  const large = await sdkParticipant(s, { room, name: 'Large', tile: { width: 1280, height: 720 } });
  const back = await until(async () => {
    const o = await only();
    const v = await inboundVideo(large.page);
    return o?.mode === 'L3T3_KEY' && v.frameWidth >= full.value.frameWidth && v.frames > 0 ? { o, v } : null;
  }, 'a large tile watching brings all three spatial layers back, and it decodes the full size', 180000);
  console.log(`SVC dynacast: all layers back, the large tile decoding ${back.value.v.frameWidth} px wide ${back.ms} ms after it joined`);
  const smallAfter = (await inboundVideo(small.page)).frames;
  await until(async () => (await inboundVideo(small.page)).frames > smallAfter + 10, 'the small tile keeps decoding', 60000);
  s.passed();
});
