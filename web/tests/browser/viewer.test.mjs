// Issue 8 (7): a participant whose token has no publish grant is a viewer
// everywhere. Its room (embedded in a host page) asks for no device, shows no
// self-view and no microphone, camera or screen button, and tells the host
// page that nothing is on; the others see its tile marked as a viewer, not a
// black tile that looks like a live camera. It still receives the room.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, hostPageServer, mintToken, waitInPage, waitForMediaFlow, embedHostPage, embedFrame, RUN_SFU } from './harness.mjs';

/** Counts getUserMedia/getDisplayMedia calls in every frame of the page. */
function countDeviceRequests() {
  window.__deviceRequests = 0;
  const md = navigator.mediaDevices;
  if (!md) return;
  for (const name of ['getUserMedia', 'getDisplayMedia']) {
    const orig = md[name].bind(md);
    md[name] = (...args) => {
      window.__deviceRequests++;
      return orig(...args);
    };
  }
}

for (const mode of /** @type {const} */ (['sfu', 'p2p'])) {
  test(`a view-only participant asks for no device and is shown as a viewer (${mode} room)`, async (t) => {
    if (mode === 'sfu' && !RUN_SFU) return t.skip('SFU-room variants turned off (WEB_TEST_SFU=0)');
    /** @type {Record<string, string>} */
    const tokens = {};
    let server = '';
    const host = await hostPageServer((path) => embedHostPage({ server, room: 'town-hall', token: tokens[path.slice(1)] ?? '' }));
    t.after(host.close);
    const env = { SFU_WEB__FRAME_ANCESTORS: host.origin, SFU_AUTH__KEYS__test: 'test-secret-test-secret-test-secret' };
    const s = await session(t, { env });
    server = s.server.url;
    tokens.vic = mintToken(env, { room: 'town-hall', identity: 'vic', name: 'Vic', mode, publish: false });
    const annToken = mintToken(env, { room: 'town-hall', identity: 'ann', name: 'Ann', mode });

    const ann = await s.participant(`/?room=town-hall&name=Ann&autojoin=1&token=${annToken}`, { name: 'ann' });
    await waitInPage(ann, () => window.demo.client?.room === 'town-hall');

    const vic = await s.participant('/healthz', { name: 'vic host' });
    await vic.addInitScript(countDeviceRequests);
    /** @type {string[]} */
    const hostConsole = [];
    vic.on('console', (m) => hostConsole.push(`[${m.type()}] ${m.text()}`));
    await vic.goto(`${host.origin}/vic`);
    const frame = /** @type {any} */ (await embedFrame(vic));
    await waitInPage(vic, () => window.events.some((e) => e.type === 'joined'));
    const vicId = await frame.evaluate(() => window.demo.client.id);
    assert.equal(await frame.evaluate(() => window.demo.client.mode), mode);

    // Vic receives Ann's video and sound.
    await waitForMediaFlow(frame);
    await waitInPage(frame, () => document.querySelector('[data-participant] video')?.videoWidth > 0);

    // Vic's room: no device asked for, no self-view, no publishing controls.
    assert.equal(await frame.evaluate(() => window.__deviceRequests), 0, 'no getUserMedia in the room frame');
    assert.deepEqual(await frame.evaluate(() => Object.values(window.demo.client.local.tracks).filter(Boolean).length), 0);
    assert.equal(await frame.locator('[data-local]').count(), 0, 'no self-view tile');
    for (const b of ['button.mic', 'button.cam', 'button.screen']) {
      assert.equal(await frame.locator(b).isVisible(), false, `${b} hidden`);
    }
    assert.equal(await frame.locator('button.hangup').isVisible(), true, 'hang up is still there');
    await frame.click('button[data-panel="people"]');
    assert.deepEqual(await frame.locator('.people li').allTextContents(), ['Vic (you) — viewer', 'Ann']);

    // The host page was told that nothing is on.
    await waitInPage(vic, () => window.events.some((e) => e.type === 'media'));
    const media = await vic.evaluate(() => window.events.filter((e) => e.type === 'media'));
    for (const m of media) assert.deepEqual([m.microphone, m.camera, m.screen], [false, false, false], JSON.stringify(media));

    // Ann sees a viewer: the tile says so, with no camera-off or mic-off badge.
    const tile = `[data-participant="${vicId}"]`;
    await waitInPage(ann, (q) => document.querySelector(q)?.dataset.viewer === 'true', tile);
    assert.equal(await ann.locator(`${tile} .viewer`).isVisible(), true);
    assert.equal(await ann.locator(`${tile} .cam-off`).isVisible(), false);
    assert.equal(await ann.locator(`${tile} .mic-off`).isVisible(), false);
    assert.equal(await ann.locator(`${tile} .avatar`).isVisible(), true, 'the initial, not a black frame');
    assert.equal(await ann.locator(`${tile} video`).evaluate((v) => v.srcObject), null, 'no stream behind the tile');
    await ann.click('button[data-panel="people"]');
    assert.deepEqual(await ann.locator('.people li').allTextContents(), ['Ann (you)', 'Vic — viewer']);
    // Ann's own tile is an ordinary publisher's.
    assert.equal(await ann.getAttribute(`[data-local]`, 'data-camera'), 'on');

    // Asking the viewer's room for the camera through the host API is refused without a prompt.
    await vic.evaluate(() => document.getElementById('room').sfuRoom.camera(true));
    await waitInPage(vic, () => window.events.some((e) => e.type === 'error' && e.code === 'permission_denied'));
    assert.equal(await frame.evaluate(() => window.__deviceRequests), 0);
    // The snippet's iframe carries `allow` only: no allowfullscreen warning on the host page.
    assert.deepEqual(hostConsole.filter((l) => /allowfullscreen/i.test(l)), []);
    s.passed();
  });
}
