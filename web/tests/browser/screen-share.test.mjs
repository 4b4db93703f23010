// Issue 5 (2): a screen share (Chromium's fake display capture) from one
// participant reaches the other as its own tile, and goes away when stopped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, joinDemo, waitInPage, sleep } from './harness.mjs';

for (const mode of /** @type {const} */ (['p2p', 'sfu'])) {
  test(`screen share reaches the other participant (${mode} room)`, async (t) => {
    const s = await session(t);
    const joined = await joinDemo(t, s, { room: `screen-${mode}`, mode, names: ['Alice', 'Bob'] });
    if (!joined) return s.passed();
    const [alice, bob] = joined.pages;
    const [aliceId] = joined.ids;
    await waitInPage(bob, (id) => document.querySelector(`[data-participant="${id}"] video`)?.videoWidth > 0, aliceId);

    await alice.click('button.screen');
    await waitInPage(alice, () => window.demo.client.localState().screen);
    const screenTile = `[data-screen="${aliceId}"] video`;
    await waitInPage(bob, (q) => document.querySelector(q)?.videoWidth > 0, screenTile);
    // The screen track is decoding frames, apart from the camera.
    const frames = () =>
      bob.evaluate(async (q) => {
        const track = document.querySelector(q).srcObject.getVideoTracks()[0];
        let decoded = 0;
        for (const pc of window.demo.client.peerConnections()) {
          (await pc.getStats()).forEach((r) => {
            if (r.type === 'inbound-rtp' && r.trackIdentifier === track.id) decoded = r.framesDecoded;
          });
        }
        return decoded;
      }, screenTile);
    // Screen frames keep arriving.
    const first = await frames();
    for (const deadline = Date.now() + 60000; (await frames()) <= first; ) {
      assert.ok(Date.now() < deadline, 'screen frames keep arriving');
      await sleep(250);
    }
    assert.equal(await bob.evaluate((id) => window.demo.client.participants.get(id).media.screen, aliceId), true);
    // The camera tile is still there, separate from the screen tile.
    assert.equal(await bob.locator(`[data-participant="${aliceId}"] video`).count(), 1);

    await alice.click('button.screen');
    await waitInPage(bob, (q) => !document.querySelector(q), screenTile);
    assert.equal(await bob.evaluate((id) => window.demo.client.participants.get(id).media.screen, aliceId), false);
    s.passed();
  });
}
