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
