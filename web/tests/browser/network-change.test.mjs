// A participant's network changes mid-call (Wi-Fi to cellular): its only
// address goes away and another comes up. The SDK restarts ICE on the same
// peer connection, the server accepts the new credentials, and media flows
// both ways again without the participant leaving or re-joining.
//
// The moving browser is started without --allow-loopback-in-peer-connection,
// so its only candidate is the address of a veth interface in the test's
// private network namespace (see /work/shared/browser-testing.md, "a
// browser that is not on loopback"); the test changes that address.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, waitInPage, waitForMediaFlow, inbound, sleep, RUN_SFU, hasMediaPlane } from './harness.mjs';
import { privateNamespace, veth } from './netns.mjs';

/** The local address of the nominated candidate pair of the page's SFU connection. */
async function selectedLocalAddress(page) {
  return page.evaluate(async () => {
    const [pc] = window.demo.client.peerConnections();
    if (!pc) return null;
    const report = await pc.getStats();
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    if (!pair || pair.state !== 'succeeded') return null;
    return report.get(pair.localCandidateId)?.address ?? null;
  });
}

/**
 * Polls `fn` (in Node) until it returns a truthy value, for at most `ms`.
 * @template T
 * @param {() => Promise<T>} fn
 */
async function until(fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`not reached in ${ms} ms: ${fn}`);
    await sleep(250);
  }
}

/** Waits until the page decodes `more` frames beyond `from` (and audio keeps coming). */
async function framesBeyond(page, from, more = 30) {
  return waitInPage(
    page,
    async ({ from, more }) => {
      let frames = 0;
      let audio = 0;
      for (const pc of window.demo.client.peerConnections()) {
        (await pc.getStats()).forEach((s) => {
          if (s.type !== 'inbound-rtp') return;
          if (s.kind === 'video') frames += s.framesDecoded ?? 0;
          else audio += s.packetsReceived ?? 0;
        });
      }
      return frames > from.video.framesDecoded + more && audio > from.audio.packetsReceived + more ? frames : false;
    },
    { from, more },
  );
}

test('a participant whose address changes mid-call keeps sending and receiving (SFU room)', async (t) => {
  if (!RUN_SFU) return t.skip('SFU-room variants turned off (WEB_TEST_SFU=0)');
  const why = privateNamespace();
  if (why) return t.skip(why);
  const net = veth(t, 'nc', '10.99.7.1/24');

  const s = await session(t);
  const room = 'network-change';
  const alice = await s.participant(`/?room=${room}&mode=sfu&name=Alice&autojoin=1`, {
    name: 'Alice (moving)',
    without: ['--allow-loopback-in-peer-connection'],
  });
  if (!(await hasMediaPlane(alice))) return t.skip('the server has no SFU media plane');
  const bob = await s.participant(`/?room=${room}&mode=sfu&name=Bob&autojoin=1`, { name: 'Bob' });
  const aliceId = await waitInPage(alice, () => window.demo.client?.room && window.demo.client.id);
  await waitInPage(bob, () => window.demo.client?.room && window.demo.client.id);
  await alice.evaluate(() => {
    window.recovery = [];
    window.demo.client.on('connection-recovery', (e) => window.recovery.push(e.action));
    window.firstPc = window.demo.client.peerConnections()[0];
  });
  await bob.evaluate(() => {
    window.seen = [];
    window.demo.client.on('participant-left', (e) => window.seen.push(`left:${e.id}`));
    window.demo.client.on('participant-joined', (e) => window.seen.push(`joined:${e.participant.id}`));
  });
  await waitForMediaFlow(alice);
  await waitForMediaFlow(bob);
  assert.equal(await until(() => selectedLocalAddress(alice)), '10.99.7.1', 'Alice talks to the server from her veth address');

  // The network changes: the old address is gone, a new one comes up.
  net.replaceAddress('10.99.7.1/24', '10.99.7.2/24');
  const changedAt = Date.now();
  const aliceAt = await inbound(alice);
  const bobAt = await inbound(bob);

  // The connection comes back on the new address, on the same peer connection.
  await until(async () => (await selectedLocalAddress(alice)) === '10.99.7.2');
  // Media flows again both ways: Bob decodes Alice's video, Alice Bob's.
  await framesBeyond(bob, bobAt);
  await framesBeyond(alice, aliceAt);
  t.diagnostic(`media flowing again both ways ${Date.now() - changedAt} ms after the address change`);

  assert.equal(await selectedLocalAddress(alice), '10.99.7.2');
  assert.equal(await alice.evaluate(() => window.demo.client.peerConnections()[0] === window.firstPc), true, 'the same peer connection');
  assert.equal(await alice.evaluate(() => window.demo.client.id), aliceId, 'the same participant');
  const recovery = await alice.evaluate(() => window.recovery);
  assert.ok(recovery.includes('restart-ice'), `Alice restarted ICE: ${recovery}`);
  assert.ok(!recovery.includes('rejoin'), `no re-join: ${recovery}`);
  assert.deepEqual(await bob.evaluate(() => window.seen), [], 'Bob never saw Alice leave');
  const stats = await (await fetch(`${s.server.url}/api/stats`)).json();
  assert.ok(stats.media.ice_restarts >= 1, `the server counted the restart: ${JSON.stringify(stats.media)}`);
  s.passed();
});
