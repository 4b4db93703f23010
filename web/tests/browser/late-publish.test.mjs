// Issue 5: the SDK used directly (no demo UI) by a viewer who joins with no
// media, receives the room, and only later turns camera and microphone on;
// the others then see and hear it. The same calls in a P2P and an SFU room.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, joinDemo, waitInPage, waitForMediaFlow } from './harness.mjs';

for (const mode of /** @type {const} */ (['p2p', 'sfu'])) {
  test(`a viewer who starts publishing later is seen and heard (${mode} room)`, async (t) => {
    const s = await session(t);
    const joined = await joinDemo(t, s, { room: `late-${mode}`, mode, names: ['Host'] });
    if (!joined) return s.passed();
    const [host] = joined.pages;

    const viewer = await s.participant('/healthz', { name: 'viewer' });
    const viewerId = await viewer.evaluate(async (m) => {
      const { RoomClient } = await import('/sdk/index.js');
      const client = new RoomClient();
      window.viewer = client;
      window.errors = [];
      client.on('error', (e) => window.errors.push(`${e.code}: ${e.message}`));
      const j = await client.join({ room: `late-${m}`, name: 'Viewer', mode: m });
      return j.id;
    }, mode);
    assert.equal(await viewer.evaluate(() => window.viewer.mode), mode);
    // Receives the host with nothing to send.
    await waitForMediaFlow(viewer, { clientExpr: 'window.viewer' });
    await waitInPage(host, (id) => document.querySelector(`[data-participant="${id}"]`)?.dataset.camera === 'off', viewerId);

    await viewer.evaluate(async () => {
      await window.viewer.setCamera(true);
      await window.viewer.setMicrophone(true);
    });
    const tile = `[data-participant="${viewerId}"]`;
    await waitInPage(host, (q) => document.querySelector(q)?.dataset.camera === 'on' && document.querySelector(`${q} video`)?.videoWidth > 0, tile);
    await waitForMediaFlow(host);
    assert.deepEqual(await viewer.evaluate(() => window.errors), []);
    s.passed();
  });
}
