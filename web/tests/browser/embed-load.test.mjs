// Issue 8 (6): an embedded room never keeps its host page loading. A media
// element that is loading without data delays its document's `load` event,
// and the room's iframe delays the host page's; the host's own `onload` code
// must run however the room goes: with a view-only participant in it (whose
// tile never gets media), as that view-only participant, and when the
// embedded participant's media cannot connect at all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, hostPageServer, mintToken, waitInPage, waitForMediaFlow, embedHostPage, embedFrame, RUN_SFU } from './harness.mjs';

/** Host pages for `/<who>`, with the token minted for `who`. */
async function hosts(t) {
  /** @type {Record<string, string>} */
  const tokens = {};
  const state = { server: '' };
  const host = await hostPageServer((path) => embedHostPage({ server: state.server, room: 'lobby', token: tokens[path.slice(1)] ?? '' }));
  t.after(host.close);
  return { host, tokens, state };
}

test('a host page embedding a room with a view-only participant in it finishes loading', async (t) => {
  if (!RUN_SFU) return t.skip('SFU-room variants turned off (WEB_TEST_SFU=0)');
  const { host, tokens, state } = await hosts(t);
  const env = { SFU_WEB__FRAME_ANCESTORS: host.origin, SFU_AUTH__KEYS__test: 'test-secret-test-secret-test-secret' };
  const s = await session(t, { env });
  state.server = s.server.url;
  tokens.ann = mintToken(env, { room: 'lobby', identity: 'ann', name: 'Ann' });
  tokens.vic = mintToken(env, { room: 'lobby', identity: 'vic', name: 'Vic', publish: false });
  tokens.bob = mintToken(env, { room: 'lobby', identity: 'bob', name: 'Bob' });

  // Ann publishes from the demo page.
  const ann = await s.participant(`/?room=lobby&name=Ann&autojoin=1&token=${tokens.ann}`, { name: 'ann' });
  await waitInPage(ann, () => window.demo.client?.room === 'lobby');

  // Vic embeds the room with a view-only token: his page loads, and he watches Ann.
  const vic = await s.participant(`${host.origin}/vic`, { name: 'vic host' });
  const vicFrame = await embedFrame(vic);
  await waitInPage(vic, () => window.events.some((e) => e.type === 'joined'));
  await waitInPage(vic, () => window.loaded, undefined, 60000);
  await waitForMediaFlow(/** @type {any} */ (vicFrame));
  assert.equal(await vicFrame.evaluate(() => window.demo.client.permissions.publish), false);

  // Bob embeds the room with Vic in it, whose tile never gets media: Bob's page loads too.
  const bob = await s.participant(`${host.origin}/bob`, { name: 'bob host' });
  const bobFrame = await embedFrame(bob);
  await waitInPage(bob, () => window.events.some((e) => e.type === 'participants' && e.count === 3));
  const vicId = await vicFrame.evaluate(() => window.demo.client.id);
  await waitInPage(/** @type {any} */ (bobFrame), (id) => document.querySelector(`[data-participant="${id}"]`) !== null, vicId);
  await waitInPage(bob, () => window.loaded, undefined, 60000);
  // The room itself works: Bob decodes Ann.
  await waitForMediaFlow(/** @type {any} */ (bobFrame));
  s.passed();
});

test('a host page whose embedded room cannot connect its media finishes loading', async (t) => {
  if (!RUN_SFU) return t.skip('SFU-room variants turned off (WEB_TEST_SFU=0)');
  const { host, tokens, state } = await hosts(t);
  const env = { SFU_WEB__FRAME_ANCESTORS: host.origin, SFU_AUTH__KEYS__test: 'test-secret-test-secret-test-secret' };
  const s = await session(t, { env });
  state.server = s.server.url;
  tokens.ann = mintToken(env, { room: 'lobby', identity: 'ann', name: 'Ann' });
  tokens.cut = mintToken(env, { room: 'lobby', identity: 'cut', name: 'Cut' });

  const ann = await s.participant(`/?room=lobby&name=Ann&autojoin=1&token=${tokens.ann}`, { name: 'ann' });
  const annId = await waitInPage(ann, () => window.demo.client?.room === 'lobby' && window.demo.client.id);

  // A Chromium without the loopback flag gathers no candidate in this
  // loopback-only namespace: its media can never connect to the server.
  const cut = await s.participant(`${host.origin}/cut`, { name: 'cut host', without: ['--allow-loopback-in-peer-connection'] });
  const frame = await embedFrame(cut);
  // Ann's tile has her forwarded tracks, which never get a packet.
  await waitInPage(/** @type {any} */ (frame), (id) => {
    const v = document.querySelector(`[data-participant="${id}"] video`);
    return v !== null && window.demo.client.tracksOf(id).length > 0;
  }, annId);
  await waitInPage(cut, () => window.loaded, undefined, 60000);
  const state2 = await frame.evaluate(() => window.demo.client.peerConnections()[0]?.connectionState);
  assert.notEqual(state2, 'connected', 'media really cannot connect here');
  const decoded = await frame.evaluate(async () => {
    let n = 0;
    (await window.demo.client.peerConnections()[0].getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') n += r.packetsReceived ?? 0;
    });
    return n;
  });
  assert.equal(decoded, 0, 'no media arrived');
  s.passed();
});
