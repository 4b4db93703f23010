// Issue 2: two Chromium processes on the demo page in one P2P room see and
// hear each other; mute and camera-off show on the other side; hanging up
// closes the connection and the other side sees the participant leave.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, waitInPage, waitForMediaFlow, videoHasPicture } from './harness.mjs';

test('P2P call between two browsers: media, mute, camera off, hang up', async (t) => {
  const s = await session(t);
  const room = '/?room=p2p-call&mode=p2p&autojoin=1';
  const alice = await s.participant(`${room}&name=Alice`, { name: 'alice' });
  const bob = await s.participant(`${room}&name=Bob`, { name: 'bob' });

  const aliceId = await waitInPage(alice, () => window.demo.client?.id);
  const bobId = await waitInPage(bob, () => window.demo.client?.id);
  assert.equal(await alice.evaluate(() => window.demo.client.mode), 'p2p');

  // Each decodes the other's video and receives audio.
  for (const [page, other] of [[alice, bobId], [bob, aliceId]]) {
    const stats = await waitForMediaFlow(page);
    assert.ok(stats.video.frameWidth > 0, 'decoded video has a width');
    assert.deepEqual(stats.states, ['connected']);
    const sel = `[data-participant="${other}"] video`;
    await waitInPage(page, (q) => document.querySelector(q)?.videoWidth > 0, sel);
    await waitInPage(page, (q) => document.querySelector(q)?.closest('[data-connection]')?.dataset.connection === 'connected', sel);
    assert.ok(await videoHasPicture(page, sel), 'remote video is not black');
  }

  // Bob mutes and turns his camera off; Alice's page shows both.
  const bobTile = `[data-participant="${bobId}"]`;
  assert.equal(await alice.getAttribute(bobTile, 'data-mic'), 'on');
  assert.equal(await alice.getAttribute(bobTile, 'data-camera'), 'on');
  await bob.click('button.mic');
  await bob.click('button.cam');
  await waitInPage(alice, (q) => {
    const el = document.querySelector(q);
    return el?.dataset.mic === 'off' && el?.dataset.camera === 'off';
  }, bobTile);
  assert.ok(await alice.isVisible(`${bobTile} .mic-off`));
  assert.ok(await alice.isVisible(`${bobTile} .cam-off`));
  // Bob's camera is really stopped, his microphone track disabled.
  assert.deepEqual(
    await bob.evaluate(() => ({ cam: window.demo.client.local.tracks.camera, mic: window.demo.client.local.tracks.microphone?.enabled })),
    { cam: null, mic: false },
  );

  // Bob turns the camera back on: Alice decodes fresh frames again.
  await bob.click('button.cam');
  await waitInPage(alice, (q) => document.querySelector(q)?.dataset.camera === 'on', bobTile);
  await waitForMediaFlow(alice, { audio: false });

  // Bob hangs up: his connection closes and his tracks stop; Alice sees him leave.
  const pcs = await bob.evaluateHandle(() => window.demo.client.peerConnections());
  await bob.click('button.hangup');
  await waitInPage(bob, () => !document.getElementById('join').hidden);
  assert.deepEqual(await pcs.evaluate((list) => list.map((pc) => pc.connectionState)), ['closed']);
  assert.equal(await bob.evaluate(() => Object.values(window.demo.client.local.tracks).filter(Boolean).length), 0);
  await waitInPage(alice, (q) => !document.querySelector(q), bobTile);
  assert.equal(await alice.evaluate(() => window.demo.client.peerConnections().length), 0);
  assert.equal(await alice.evaluate(() => window.demo.client.participants.size), 0);
  s.passed();
});
