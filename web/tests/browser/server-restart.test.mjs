// The server crashes mid-call and comes back on the same address. The SDK
// notices (its socket drops), reconnects when the server is back, joins
// again as a newcomer (the new process knows nothing of the old call) and
// publishes its camera and microphone again; media flows again both ways,
// and the new server holds exactly the call that is going on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { session, startServer, waitInPage, waitForMediaFlow, RUN_SFU, hasMediaPlane } from './harness.mjs';

/** A free TCP port on 127.0.0.1 (bound, then released for the server). */
async function freeTcpPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', () => r(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
  await new Promise((r) => srv.close(() => r(undefined)));
  return port;
}

test('after a server crash and restart the SDK rejoins and republishes (SFU room)', async (t) => {
  if (!RUN_SFU) return t.skip('SFU-room variants turned off (WEB_TEST_SFU=0)');
  const env = { SFU_SERVER__LISTEN: `127.0.0.1:${await freeTcpPort()}` };
  const s = await session(t, { server: false });
  let server = await startServer({ env });
  s.defer(() => server.stop());
  const room = 'server-restart';
  const alice = await s.participant(`${server.url}/?room=${room}&mode=sfu&name=Alice&autojoin=1`, { name: 'Alice' });
  if (!(await hasMediaPlane(alice))) return t.skip('the server has no SFU media plane');
  const bob = await s.participant(`${server.url}/?room=${room}&mode=sfu&name=Bob&autojoin=1`, { name: 'Bob' });
  const [aliceId, bobId] = [
    await waitInPage(alice, () => window.demo.client?.room && window.demo.client.id),
    await waitInPage(bob, () => window.demo.client?.room && window.demo.client.id),
  ];
  await waitForMediaFlow(alice);
  await waitForMediaFlow(bob);
  for (const page of [alice, bob]) {
    await page.evaluate(() => {
      window.states = [];
      window.demo.client.on('signaling-state', (e) => window.states.push(e.state));
      window.demo.client.on('joined', (e) => window.states.push(`joined:${e.resumed}`));
    });
  }

  // A crash: no graceful shutdown, nothing told to anyone.
  await server.kill('SIGKILL');
  await waitInPage(alice, () => window.states.includes('reconnecting'));
  await waitInPage(bob, () => window.states.includes('reconnecting'));
  server = await startServer({ env });
  const restartedAt = Date.now();

  // Both join the new server as newcomers and publish again.
  const newAlice = await waitInPage(alice, (old) => window.states.includes('joined:false') && window.demo.client.room && window.demo.client.id !== old && window.demo.client.id, aliceId);
  const newBob = await waitInPage(bob, (old) => window.states.includes('joined:false') && window.demo.client.room && window.demo.client.id !== old && window.demo.client.id, bobId);
  await waitForMediaFlow(alice);
  await waitForMediaFlow(bob);
  await waitInPage(bob, (id) => document.querySelector(`[data-participant="${id}"] video`)?.videoWidth > 0, newAlice);
  await waitInPage(alice, (id) => document.querySelector(`[data-participant="${id}"] video`)?.videoWidth > 0, newBob);
  t.diagnostic(`both see each other's video again ${Date.now() - restartedAt} ms after the server was back`);

  // Each sees only the other's new self; nothing of the old call is left.
  assert.deepEqual(await alice.evaluate(() => [...window.demo.client.participants.keys()]), [newBob]);
  assert.deepEqual(await bob.evaluate(() => [...window.demo.client.participants.keys()]), [newAlice]);
  assert.equal(await alice.evaluate(() => window.demo.client.peerConnections().length), 1);
  assert.equal(await bob.evaluate(() => window.demo.client.peerConnections().length), 1);
  const stats = await (await fetch(`${server.url}/api/stats`)).json();
  assert.equal(stats.signaling.participants, 2, JSON.stringify(stats.signaling));
  assert.equal(stats.signaling.rooms, 1, JSON.stringify(stats.signaling));
  assert.equal(stats.media.connections, 2, JSON.stringify(stats.media));
  s.passed();
});
