// Issue 2: three participants in a P2P room form a full mesh (two
// connections each, every remote video decoding), and the demo room's
// grid, names, indicators, participant list and stats panel show them.
// With WRITE_SCREENSHOT=1 the first participant's view is saved to
// docs/demo-room.png (the README's picture).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { session, joinDemo, waitInPage, waitForMediaFlow, videoHasPicture } from './harness.mjs';

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs');

test('three participants in a P2P mesh, shown in the demo room', async (t) => {
  const s = await session(t);
  const viewport = { width: 1440, height: 810 };
  const joined = await joinDemo(t, s, { room: 'mesh-three', mode: 'p2p', names: ['Ada', 'Grace', 'Linus'], viewport });
  assert.ok(joined);
  const { pages, ids } = joined;

  for (const [i, page] of pages.entries()) {
    await waitInPage(page, () => {
      const pcs = window.demo.client.peerConnections();
      return pcs.length === 2 && pcs.every((pc) => pc.connectionState === 'connected');
    });
    await waitForMediaFlow(page);
    for (const other of ids.filter((_, j) => j !== i)) {
      const sel = `[data-participant="${other}"] video`;
      await waitInPage(page, (q) => document.querySelector(q)?.videoWidth > 0, sel);
      assert.ok(await videoHasPicture(page, sel), `participant ${i} sees ${other}`);
    }
    assert.equal(await page.locator('.grid .tile').count(), 3, 'own tile plus two remote tiles');
    assert.equal(await page.locator('.count').textContent(), '3 people');
  }

  // The first participant's view: names on tiles, Linus muted, panels open.
  const [ada, , linus] = pages;
  await linus.click('button.mic');
  await waitInPage(ada, (id) => document.querySelector(`[data-participant="${id}"]`)?.dataset.mic === 'off', ids[2]);
  assert.equal(await ada.locator(`[data-participant="${ids[2]}"] .name`).textContent(), 'Linus');
  await ada.click('button[data-panel="people"]');
  const people = await ada.locator('.people li').allTextContents();
  assert.deepEqual(people, ['Ada (you)', 'Grace', 'Linus — muted']);
  await ada.click('button[data-panel="stats"]');
  // The stats panel lists inbound video from both peers with codec and resolution.
  await waitInPage(ada, () => {
    const rows = [...document.querySelectorAll('.stats tbody tr')].map((r) => r.textContent);
    return rows.filter((r) => r.startsWith('⬇') && r.includes('video') && /\d+×\d+/.test(r) && / kb\/s/.test(r)).length >= 2;
  });
  assert.equal(await ada.getAttribute('.grid', 'data-count'), '3');
  // Speaking and connection-quality indicators come from getStats(): the
  // fake microphone beeps, and loopback is a good connection.
  await waitInPage(ada, () => document.querySelector('[data-participant][data-speaking="true"]') !== null);
  await waitInPage(ada, () => [...document.querySelectorAll('[data-participant]')].every((el) => el.dataset.quality === 'good'));

  const out = process.env.WRITE_SCREENSHOT === '1' ? path.join(docs, 'demo-room.png') : path.join(os.tmpdir(), 'demo-room.png');
  await ada.screenshot({ path: out });
  s.passed();
});
