// Issue 2/5: the demo room tells people what went wrong — denied camera and
// microphone, a full room, a bad token, a lost server — and fits a phone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, waitInPage, mintToken } from './harness.mjs';

const notice = (/** @type {import('playwright-core').Page} */ page, /** @type {string} */ sel) =>
  waitInPage(page, (q) => {
    const el = document.querySelector(q);
    return el && !el.hidden && el.textContent;
  }, sel);

test('denied camera and microphone: a clear message, and the call goes on', async (t) => {
  const s = await session(t);
  // Without the fake permission UI, headless Chromium refuses capture.
  const page = await s.participant('/?room=denied&mode=p2p&name=Ann&autojoin=1', { without: ['--use-fake-ui-for-media-stream'] });
  const text = await notice(page, '#room .notice');
  assert.match(text, /Permission for your (camera|microphone) was denied/);
  await waitInPage(page, () => window.demo.client?.room === 'denied');
  assert.deepEqual(await page.evaluate(() => window.demo.client.localState()), { microphone: false, camera: false, screen: false });
  assert.equal(await page.getAttribute('[data-local]', 'data-camera'), 'off');
  s.passed();
});

test('a full room and a lost server are explained', async (t) => {
  const s = await session(t, { env: { SFU_ROOMS__MAX_P2P_PARTICIPANTS: '2' } });
  const page = await s.participant('/demo/classic.html');
  // Two raw sockets fill the room.
  await page.evaluate(async () => {
    for (let i = 0; i < 2; i++) {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      await new Promise((r) => (ws.onopen = r));
      ws.send(JSON.stringify({ type: 'join', room: 'full', mode: 'p2p' }));
      await new Promise((r) => (ws.onmessage = (e) => JSON.parse(e.data).type === 'joined' && r(undefined)));
      window[`keep${i}`] = ws;
    }
  });
  const third = await s.participant('/?room=full&mode=p2p&name=Late&autojoin=1');
  const text = await notice(third, '#join .notice');
  assert.match(text, /This room is full/);
  assert.equal(await third.isVisible('#join'), true, 'back at the join form');
  assert.equal(await third.evaluate(() => Object.values(window.demo.client.local.tracks).filter(Boolean).length), 0, 'tracks stopped');

  // In a room, losing the server shows a reconnecting notice.
  const inRoom = await s.participant('/?room=other&mode=p2p&name=Kim&autojoin=1');
  await waitInPage(inRoom, () => window.demo.client?.room === 'other');
  await s.server.stop();
  assert.match(await notice(inRoom, '#room .notice'), /Connection to the server lost: reconnecting/);
  assert.equal(await inRoom.getAttribute('#room', 'data-signaling'), 'reconnecting');
  s.passed();
});

test('a bad or missing token is explained', async (t) => {
  const env = { SFU_AUTH__KEYS__test: 'test-secret-test-secret-test-secret' };
  const s = await session(t, { env });
  const bad = await s.participant('/?room=locked&mode=p2p&name=Max&autojoin=1&token=not.a.token');
  assert.match(await notice(bad, '#join .notice'), /invitation link is not valid/);
  await bad.goto(`${s.server.url}/?room=locked&mode=p2p&name=Max&autojoin=1`);
  assert.match(await notice(bad, '#join .notice'), /needs an invitation link/);
  const wrongRoom = mintToken(env, { room: 'elsewhere', identity: 'max', mode: 'p2p' });
  await bad.goto(`${s.server.url}/?room=locked&name=Max&autojoin=1&token=${wrongRoom}`);
  assert.match(await notice(bad, '#join .notice'), /for another room/);
  const good = mintToken(env, { room: 'locked', identity: 'max', mode: 'p2p' });
  await bad.goto(`${s.server.url}/?room=locked&name=Max&autojoin=1&token=${good}`);
  await waitInPage(bad, () => window.demo.client?.room === 'locked');
  s.passed();
});

test('the room fits a phone screen, works from the keyboard, and switches devices', async (t) => {
  const s = await session(t);
  const page = await s.participant('/?room=phone&mode=p2p&name=Pat&autojoin=1', { viewport: { width: 390, height: 844 } });
  await waitInPage(page, () => window.demo.client?.room === 'phone');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling');
  for (const b of ['button.mic', 'button.cam', 'button.screen', 'button.hangup']) {
    const box = await page.locator(b).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390 && box.y + box.height <= 844, `${b} on screen`);
  }
  // Tab to the mute button and press it.
  await page.focus('button.mic');
  await page.keyboard.press('Enter');
  await waitInPage(page, () => !window.demo.client.localState().microphone);
  assert.equal(await page.getAttribute('button.mic', 'aria-pressed'), 'false');
  // Shortcut: V turns the camera off.
  await page.keyboard.press('v');
  await waitInPage(page, () => !window.demo.client.localState().camera);
  await page.keyboard.press('v');
  await waitInPage(page, () => window.demo.client.localState().camera);

  // The device picker lists the cameras and switching restarts the camera on the chosen one.
  const before = await page.evaluate(() => window.demo.client.local.tracks.camera.id);
  await page.click('button[data-panel="devices"]');
  await waitInPage(page, () => document.querySelectorAll('.cam-select option').length > 0 && document.querySelectorAll('.mic-select option').length > 0);
  const choice = await page.locator('.cam-select option').last().getAttribute('value');
  await page.selectOption('.cam-select', choice);
  await waitInPage(page, (old) => window.demo.client.local.tracks.camera?.id !== old, before);
  assert.equal(await page.evaluate(() => window.demo.client.local.tracks.camera.getSettings().deviceId), choice);
  await waitInPage(page, () => document.querySelector('[data-local] video').videoWidth > 0);
  s.passed();
});
