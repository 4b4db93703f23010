// Issue 5 (1): a host page on another origin embeds the room with the
// snippet; two participants join through two embeds and decode each other's
// video; the host page receives the postMessage events and can mute; an
// origin not in `[web] frame_ancestors` cannot frame the room.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, hostPageServer, mintToken, waitInPage, waitForMediaFlow, sleep, RUN_SFU, hasMediaPlane } from './harness.mjs';

/** The host page: the copy-paste snippet, plus a log of what it hears. */
const hostPage = (/** @type {string} */ server, /** @type {string} */ room, /** @type {string} */ token) => `<!doctype html>
<title>Host</title>
<h1>Our intranet</h1>
<div id="room"></div>
<script>
  window.events = [];
  for (const type of ['ready', 'joined', 'left', 'participants', 'media', 'error']) {
    document.getElementById('room').addEventListener('sfu-room:' + type, (e) => window.events.push(e.detail));
  }
</script>
<script src="${server}/embed.js" data-room="${room}" data-token="${token}" data-target="#room" data-height="400px" async></script>`;

for (const mode of /** @type {const} */ (['p2p', 'sfu'])) {
test(`embedded room on another origin: call, host events, frame-ancestors (${mode} room)`, async (t) => {
  if (mode === 'sfu' && !RUN_SFU) return t.skip('SFU-room variants turned off (WEB_TEST_SFU=0)');
  /** @type {{ token: string }} */
  const tokens = {};
  let serverUrl = '';
  const page = (/** @type {string} */ path) => hostPage(serverUrl, 'embedded', tokens[path.slice(1)] ?? '');
  const allowed = await hostPageServer(page);
  const other = await hostPageServer(page);
  t.after(() => Promise.all([allowed.close(), other.close()]));

  const env = { SFU_WEB__FRAME_ANCESTORS: allowed.origin, SFU_AUTH__KEYS__test: 'test-secret-test-secret-test-secret' };
  const s = await session(t, { env });
  serverUrl = s.server.url;
  for (const who of ['alice', 'bob', 'eve']) {
    tokens[who] = mintToken(env, { room: 'embedded', identity: who, name: who[0].toUpperCase() + who.slice(1), mode });
  }

  // The room page carries the configured frame-ancestors policy.
  const res = await fetch(`${s.server.url}/embed/room.html`);
  assert.equal(res.headers.get('content-security-policy'), `frame-ancestors 'self' ${allowed.origin}`);

  const alice = await s.participant(`${allowed.origin}/alice`, { name: 'alice host' });
  const probe = { room: 'probe', token: mintToken(env, { room: 'probe', identity: 'probe', mode: 'sfu' }) };
  if (mode === 'sfu' && !(await hasMediaPlane(await s.participant('/healthz'), probe))) {
    s.passed();
    return t.skip('the server has no SFU media plane');
  }
  const bob = await s.participant(`${allowed.origin}/bob`, { name: 'bob host' });
  const roomFrame = async (/** @type {import('playwright-core').Page} */ p) => {
    await waitInPage(p, () => document.querySelector('#room iframe') !== null);
    for (let i = 0; i < 100; i++) {
      const f = p.frames().find((fr) => fr.url().includes('/embed/room.html'));
      if (f) return f;
      await sleep(100);
    }
    throw new Error('no room frame');
  };
  const aliceFrame = await roomFrame(alice);
  const bobFrame = await roomFrame(bob);

  // Both embeds joined the room and decode each other's video.
  for (const f of [aliceFrame, bobFrame]) {
    const stats = await waitForMediaFlow(/** @type {any} */ (f));
    assert.ok(stats.video.frameWidth > 0);
    await waitInPage(/** @type {any} */ (f), () => document.querySelector('[data-participant] video')?.videoWidth > 0);
  }
  assert.equal(await aliceFrame.evaluate(() => window.demo.client.mode), mode);

  // The host pages heard: ready, joined, and the participant count reaching 2.
  for (const p of [alice, bob]) {
    await waitInPage(p, () => window.events.some((e) => e.type === 'participants' && e.count === 2));
    const types = await p.evaluate(() => window.events.map((e) => e.type));
    assert.ok(types.includes('ready') && types.includes('joined'), `events: ${types}`);
    const joined = await p.evaluate(() => window.events.find((e) => e.type === 'joined'));
    assert.equal(joined.room, 'embedded');
    assert.equal(await p.evaluate(() => document.getElementById('room').sfuRoom.participantCount), 2);
  }

  // The host page mutes Alice through the API; Bob's room shows it, Alice's host hears it.
  const aliceId = await aliceFrame.evaluate(() => window.demo.client.id);
  // Names come from the tokens.
  assert.equal(await bobFrame.locator(`[data-participant="${aliceId}"] .name`).textContent(), 'Alice');
  assert.equal(await aliceFrame.locator('[data-local] .name').textContent(), 'Alice (you)');
  await alice.evaluate(() => document.getElementById('room').sfuRoom.mute(true));
  await waitInPage(/** @type {any} */ (bobFrame), (id) => document.querySelector(`[data-participant="${id}"]`)?.dataset.mic === 'off', aliceId);
  await waitInPage(alice, () => window.events.some((e) => e.type === 'media' && e.microphone === false));

  // A message from another window or origin is ignored: a script on the host
  // page cannot pretend to be the room (wrong source) ...
  await alice.evaluate(() => window.postMessage({ protocol: 'sfu-room', type: 'participants', count: 99 }, '*'));
  await sleep(300);
  assert.equal(await alice.evaluate(() => document.getElementById('room').sfuRoom.participantCount), 2);

  // ... and a host origin that is not allowed cannot frame the room at all.
  const eve = await s.participant(`${other.origin}/eve`, { name: 'eve host' });
  await waitInPage(eve, () => document.querySelector('#room iframe') !== null);
  await sleep(2000);
  assert.deepEqual(await eve.evaluate(() => window.events), [], 'no event from a refused frame');
  const eveFrame = eve.frames().find((f) => f !== eve.mainFrame());
  assert.ok(eveFrame, 'the iframe element exists');
  assert.ok(!eveFrame.url().includes('/embed/room.html') || !(await eveFrame.evaluate(() => !!window.demo).catch(() => false)), `refused frame did not load the room (${eveFrame.url()})`);
  assert.equal(await aliceFrame.evaluate(() => window.demo.client.participants.size), 1, 'Eve never joined');

  // A refused join reaches the host page as an `error` with the server's code, then `left`.
  if (mode === 'p2p') {
    tokens.mallory = 'not.a.token';
    const mallory = await s.participant(`${allowed.origin}/mallory`, { name: 'mallory host' });
    await waitInPage(mallory, () => window.events.some((e) => e.type === 'left'));
    const error = await mallory.evaluate(() => window.events.find((e) => e.type === 'error'));
    assert.equal(error?.code, 'token_invalid');
    assert.match(error.message, /invitation link is not valid/);
  }

  // Hanging up from the host API: Alice's host hears `left`, Bob sees her go.
  await alice.evaluate(() => document.getElementById('room').sfuRoom.leave());
  await waitInPage(alice, () => window.events.some((e) => e.type === 'left'));
  await waitInPage(/** @type {any} */ (bobFrame), (id) => !document.querySelector(`[data-participant="${id}"]`), aliceId);
  s.passed();
});
}
