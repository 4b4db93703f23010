// The SDK in a cluster, with fake WebSocket / RTCPeerConnection: it follows
// `redirect`, tries the next node when one is gone, and on `move` joins the
// new node while the old connection keeps carrying media until the new one
// is up.

import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { RoomClient } from '../../sdk/client.js';
import { FakeWebSocket, FakePeerConnection, FakeMediaStream, FakeMediaDevices, settle, reset } from './fakes.mjs';

beforeEach(reset);

/** @param {string | string[]} url */
function makeClient(url) {
  const client = new RoomClient({
    url,
    WebSocket: /** @type {any} */ (FakeWebSocket),
    RTCPeerConnection: /** @type {any} */ (FakePeerConnection),
    MediaStream: /** @type {any} */ (FakeMediaStream),
    mediaDevices: /** @type {any} */ (new FakeMediaDevices()),
    backoff: { initialMs: 1, maxMs: 5 },
  });
  /** @type {string[]} */
  const events = [];
  client.on('participant-left', ({ id }) => events.push(`participant-left:${id}`));
  client.on('node-changed', ({ node, reason }) => events.push(`node-changed:${node}:${reason}`));
  client.on('error', (e) => events.push(`error:${e.code}`));
  return { client, events };
}

const joined = (over = {}) => ({
  type: 'joined',
  clientId: 'me',
  room: 'r',
  mode: 'sfu',
  name: 'Me',
  participants: [{ id: 'b', name: 'B', media: { microphone: true, camera: true, screen: false } }],
  iceServers: [],
  permissions: { publish: true, subscribe: true },
  resumeToken: 'secret',
  resumed: false,
  node: 'n1',
  ...over,
});

test('a redirect is followed once, to the node it names', async () => {
  const { client, events } = makeClient('ws://lb/ws');
  const p = client.join({ room: 'r', name: 'Me', token: 'tok' });
  const ws1 = FakeWebSocket.last;
  ws1.open();
  assert.equal(ws1.sentOfType('join')[0].redirect, true, 'the first join accepts a redirect');
  ws1.receive({ type: 'redirect', url: 'ws://n2/ws', node: 'n2', room: 'r' });
  const ws2 = FakeWebSocket.last;
  assert.notEqual(ws2, ws1);
  assert.equal(ws2.url, 'ws://n2/ws');
  assert.equal(ws1.readyState, 3, 'the first socket is closed');
  ws2.open();
  assert.deepEqual(ws2.sentOfType('join'), [{ type: 'join', room: 'r', name: 'Me', token: 'tok', redirect: false }]);
  ws2.receive(joined({ node: 'n2' }));
  const info = await p;
  assert.equal(info.node, 'n2');
  assert.deepEqual(events, ['node-changed:n2:redirect']);
  // The redirected-to node is the one tried first from now on.
  ws2.drop();
  await settle();
  assert.equal(FakeWebSocket.last.url, 'ws://lb/ws', 'then the others, in turn');
});

test('with several nodes a lost socket reconnects to the next, and a place taken back there gets a new connection', async () => {
  const { client, events } = makeClient(['ws://a/ws', 'ws://b/ws']);
  await client.setMicrophone(true);
  const p = client.join({ room: 'r', name: 'Me' });
  const ws1 = FakeWebSocket.last;
  assert.equal(ws1.url, 'ws://a/ws');
  ws1.open();
  ws1.receive(joined({ node: 'a' }));
  await p;
  await settle();
  const pc1 = FakePeerConnection.last;
  ws1.drop(); // the node was killed
  await settle();
  const ws2 = FakeWebSocket.last;
  assert.equal(ws2.url, 'ws://b/ws');
  ws2.open();
  const rejoin = ws2.sentOfType('join')[0];
  assert.equal(rejoin.resume, 'secret');
  ws2.receive(joined({ node: 'b', resumed: true, moved: true }));
  await settle();
  const pc2 = FakePeerConnection.last;
  assert.notEqual(pc2, pc1, 'a new connection to the new node');
  assert.equal(pc1.connectionState, 'closed', 'the dead node\'s connection is gone at once');
  assert.deepEqual(client.peerConnections(), [pc2]);
  assert.ok(ws2.sentOfType('offer').length >= 1, 'it publishes again to the new node');
  assert.deepEqual(events, ['node-changed:b:reconnect']);
  assert.equal(client.id, 'me');
  assert.equal(client.participants.size, 1, 'nobody left');
});

test('move: the new node is joined with the resume token, and the old connection stays until the new one is up', async () => {
  const { client, events } = makeClient('ws://n1/ws');
  await client.setMicrophone(true);
  const p = client.join({ room: 'r', name: 'Me' });
  const ws1 = FakeWebSocket.last;
  ws1.open();
  ws1.receive(joined());
  await p;
  await settle();
  const pc1 = FakePeerConnection.last;
  const offersOnOld = ws1.sentOfType('offer').length;

  ws1.receive({ type: 'move', url: 'ws://n3/ws', node: 'n3', room: 'r' });
  const ws2 = FakeWebSocket.last;
  assert.equal(ws2.url, 'ws://n3/ws');
  assert.notEqual(ws1.readyState, 3, 'the old socket stays open meanwhile');
  ws2.open();
  assert.deepEqual(ws2.sentOfType('join'), [{ type: 'join', room: 'r', name: 'Me', resume: 'secret', redirect: false }]);
  ws2.receive(joined({ node: 'n3', resumed: true, moved: true }));
  await settle();
  const pc2 = FakePeerConnection.last;
  assert.notEqual(pc2, pc1);
  assert.notEqual(pc1.connectionState, 'closed', 'make before break');
  assert.ok(ws2.sentOfType('offer').length >= 1, 'the new connection negotiates with the new node');
  assert.equal(ws1.sentOfType('offer').length, offersOnOld, 'and not through the old socket');
  // The old node still renegotiates the old connection through the old socket.
  ws1.receive({ type: 'offer', sdp: 'offer 9 m=3' });
  await settle();
  assert.equal(ws1.sentOfType('answer').length, 1, 'answered on the old socket');
  assert.equal(ws2.sentOfType('answer').length, 0);

  pc2.setConnectionState('connected');
  await settle();
  assert.equal(pc1.connectionState, 'closed', 'the old connection goes once the new one is up');
  assert.equal(ws1.readyState, 3, 'and the old socket with it');
  assert.deepEqual(client.peerConnections(), [pc2]);
  assert.deepEqual(events, ['node-changed:n3:move']);
  // The old socket does not come back.
  ws1.drop();
  await settle();
  assert.equal(FakeWebSocket.last, ws2);
});
