// Issue 5 (3): the signaling socket of a participant dies mid-call; the SDK
// reconnects and resumes its place within the grace period. The other side
// never sees it leave, media keeps flowing, and signaling works again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, joinDemo, waitInPage, waitForMediaFlow, sleep } from './harness.mjs';

for (const mode of /** @type {const} */ (['p2p', 'sfu'])) {
  test(`a dropped WebSocket resumes without leaving (${mode} room)`, async (t) => {
    const s = await session(t);
    const joined = await joinDemo(t, s, { room: `resume-${mode}`, mode, names: ['Alice', 'Bob'] });
    if (!joined) return s.passed();
    const [alice, bob] = joined.pages;
    const [aliceId] = joined.ids;
    await waitForMediaFlow(bob);
    await bob.evaluate(() => {
      window.seen = [];
      window.demo.client.on('participant-left', (e) => window.seen.push(`left:${e.id}`));
      window.demo.client.on('participant-joined', (e) => window.seen.push(`joined:${e.participant.id}`));
    });
    await alice.evaluate(() => {
      window.states = [];
      window.demo.client.on('signaling-state', (e) => window.states.push(e.state));
      window.demo.client.on('joined', (e) => window.states.push(`joined:${e.resumed}`));
      window.oldSocket = window.demo.client.signaling.socket;
      window.demo.client.signaling.socket.close(); // the connection dies under the SDK
    });

    await waitInPage(alice, () => window.states.includes('joined:true'));
    assert.deepEqual(await alice.evaluate(() => window.states), ['reconnecting', 'open', 'joined:true']);
    assert.equal(await alice.evaluate(() => window.demo.client.id), aliceId, 'same participant id');
    assert.ok(await alice.evaluate(() => window.demo.client.signaling.socket !== window.oldSocket), 'a new socket');

    // Media still flows both ways, and the room never saw Alice leave.
    await waitForMediaFlow(bob);
    await waitForMediaFlow(alice);
    await sleep(1000);
    assert.deepEqual(await bob.evaluate(() => window.seen), []);
    assert.equal(await bob.locator(`[data-participant="${aliceId}"]`).count(), 1);

    // The new socket carries Alice's signaling: her mute reaches Bob.
    await alice.click('button.mic');
    await waitInPage(bob, (id) => document.querySelector(`[data-participant="${id}"]`)?.dataset.mic === 'off', aliceId);
    s.passed();
  });
}

for (const mode of /** @type {const} */ (['p2p', 'sfu'])) {
test(`after the grace period the dropped participant comes back as a newcomer (${mode} room)`, async (t) => {
  // Grace zero: the room is told at once, so the resume finds no place.
  const s = await session(t, { env: { SFU_ROOMS__RECONNECT_GRACE: '0s' } });
  const joined = await joinDemo(t, s, { room: `no-grace-${mode}`, mode, names: ['Alice', 'Bob'] });
  if (!joined) return s.passed();
  const [alice, bob] = joined.pages;
  const [aliceId] = joined.ids;
  await waitForMediaFlow(bob);
  await alice.evaluate(() => window.demo.client.signaling.socket.close());

  // Alice is back under a new id; Bob saw the old one leave and the new one join.
  const newId = await waitInPage(alice, (old) => window.demo.client.room && window.demo.client.id !== old && window.demo.client.id, aliceId);
  await waitInPage(bob, (id) => !document.querySelector(`[data-participant="${id}"]`), aliceId);
  await waitInPage(bob, (id) => document.querySelector(`[data-participant="${id}"] video`)?.videoWidth > 0, newId);
  assert.equal(await bob.evaluate(() => window.demo.client.peerConnections().length), 1, 'the old connection was replaced');
  await waitForMediaFlow(alice);
  s.passed();
});
}
