// RoomClient state handling with fake WebSocket / RTCPeerConnection:
// join and event order, SFU and P2P negotiation (incl. glare), reconnection
// with resume, and error codes.

import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { RoomClient } from '../../sdk/client.js';
import { tokenPermissions } from '../../sdk/token.js';
import { FakeWebSocket, FakePeerConnection, FakeMediaStream, FakeMediaDevices, settle, reset } from './fakes.mjs';

beforeEach(reset);

function makeClient(extra = {}) {
  const client = new RoomClient({
    ...extra,
    url: 'ws://test/ws',
    WebSocket: /** @type {any} */ (FakeWebSocket),
    RTCPeerConnection: /** @type {any} */ (FakePeerConnection),
    MediaStream: /** @type {any} */ (FakeMediaStream),
    mediaDevices: /** @type {any} */ (new FakeMediaDevices()),
    backoff: { initialMs: 1, maxMs: 5 },
  });
  /** @type {string[]} */
  const events = [];
  for (const type of ['signaling-state', 'joined', 'left', 'participant-joined', 'participant-left', 'media-state', 'track-added', 'track-removed', 'connection-state', 'connection-recovery', 'error']) {
    client.on(/** @type {any} */ (type), (d) => {
      const detail = type === 'signaling-state' ? d.state : type === 'participant-joined' ? d.participant.id : type === 'participant-left' ? d.id : type === 'error' ? d.code : type === 'connection-state' ? `${d.peerId}:${d.state}` : type === 'connection-recovery' ? d.action : '';
      events.push(detail ? `${type}:${detail}` : type);
    });
  }
  return { client, events };
}

const joined = (over = {}) => ({
  type: 'joined',
  clientId: 'me',
  room: 'r',
  mode: 'sfu',
  name: 'Me',
  participants: [],
  iceServers: [],
  permissions: { publish: true, subscribe: true },
  resumeToken: 'secret',
  resumed: false,
  ...over,
});
const peer = (id) => ({ id, name: id.toUpperCase(), media: { microphone: true, camera: true, screen: false } });

test('join sends the request and emits events in order', async () => {
  const { client, events } = makeClient();
  const p = client.join({ room: 'r', name: 'Me', token: 'tok' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive({ type: 'registered', clientId: 'c1' });
  assert.deepEqual(ws.sentOfType('join'), [{ type: 'join', room: 'r', name: 'Me', token: 'tok', redirect: true }]);
  ws.receive(joined({ participants: [peer('b'), peer('c')] }));
  const info = await p;
  assert.equal(info.mode, 'sfu');
  assert.deepEqual(events.slice(0, 6), [
    'signaling-state:connecting',
    'signaling-state:open',
    'joined',
    'participant-joined:b',
    'participant-joined:c',
    'connection-state:null:new',
  ]);
  assert.equal(client.peerConnections().length, 1, 'one connection to the server in an SFU room');
  assert.deepEqual(ws.sentOfType('media-state')[0], { type: 'media-state', microphone: false, camera: false, screen: false, tracks: [] });
});

test('join errors reject with the server code', async () => {
  const { client } = makeClient();
  const p = client.join({ room: 'r' });
  FakeWebSocket.last.open();
  FakeWebSocket.last.receive({ type: 'error', code: 'room_full', message: 'full', request: 'join' });
  await assert.rejects(p, (e) => e.code === 'room_full');
  assert.equal(client.room, null);
  // A second join may follow on a fresh socket.
  const again = client.join({ room: 'r2' });
  FakeWebSocket.last.open();
  FakeWebSocket.last.receive(joined({ room: 'r2' }));
  assert.equal((await again).room, 'r2');
});

test('SFU: publishes with an untargeted offer, answers server offers, polite on glare', async () => {
  const { client, events } = makeClient();
  await client.setCamera(true);
  const p = client.join({ room: 'r' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined());
  await p;
  await settle();
  const pc = FakePeerConnection.last;
  const offers = ws.sentOfType('offer');
  assert.equal(offers.length, 1);
  assert.equal(offers[0].target, undefined, 'SFU offers go to the server');
  assert.equal(pc.signalingState, 'have-local-offer');
  // The media-state names the camera by the track id the SDP carries.
  const cam = client.local.tracks.camera;
  assert.deepEqual(ws.sentOfType('media-state').at(-1).tracks, [{ id: cam?.id, source: 'camera' }]);

  // Glare on the very first offer: the server offers while ours is pending
  // (and drops ours). Rather than roll its first offer back, the client
  // answers on a new connection and offers its tracks from there.
  ws.receive({ type: 'offer', sdp: 'offer 1 m=3' });
  await settle();
  assert.equal(pc.rolledBack, undefined, 'no rollback');
  assert.equal(pc.signalingState, 'closed', 'the first connection is gone');
  const pc2 = FakePeerConnection.last;
  assert.notEqual(pc2, pc);
  assert.deepEqual(client.peerConnections(), [pc2]);
  assert.ok(events.includes('connection-recovery:new-connection'));
  assert.equal(ws.sentOfType('answer').length, 1);
  assert.equal(ws.sentOfType('offer').length, 2, 'the publish offered again, from the new connection');
  assert.equal(pc2.signalingState, 'have-local-offer');
  assert.deepEqual(pc2.transceivers.filter((t) => t.direction === 'sendonly').map((t) => t.sender.track), [cam]);
  ws.receive({ type: 'answer', sdp: 'answer 9 m=4' });
  await settle();
  assert.equal(pc2.signalingState, 'stable');
  assert.equal(ws.sentOfType('offer').length, 2, 'nothing left to offer');
  ws.receive({ type: 'ice-candidate', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' } });
  ws.receive({ type: 'ice-candidate', candidate: null });
  await settle();
  assert.equal(pc2.candidates.length, 1, 'end-of-candidates is not passed on');

  // A later glare (a screen share offered while the server offers) rolls back as usual.
  await client.setScreenShare(true);
  ws.receive({ type: 'offer', sdp: 'offer 2 m=5' });
  await settle();
  assert.equal(pc2.rolledBack, 1);
  assert.equal(FakePeerConnection.last, pc2, 'same connection');
  assert.equal(ws.sentOfType('answer').length, 2);
  assert.equal(pc2.signalingState, 'have-local-offer', 'the share offered again');
  ws.receive({ type: 'answer', sdp: 'answer 10 m=6' });
  await settle();
  await client.setScreenShare(false);
  ws.receive({ type: 'answer', sdp: 'answer 11 m=6' });
  await settle();

  // Camera off keeps the transceiver and sends nothing; on again, no new offer needed.
  const sentOffers = ws.sentOfType('offer').length;
  await client.setCamera(false);
  assert.equal(pc2.transceivers.find((t) => t.direction === 'sendonly')?.sender.track, null);
  assert.equal(ws.sentOfType('media-state').at(-1).camera, false);
  await client.setCamera(true);
  await settle();
  assert.equal(ws.sentOfType('offer').length, sentOffers);
  assert.deepEqual(ws.sentOfType('media-state').at(-1).tracks, [{ id: cam?.id, source: 'camera' }], 'same SDP track id after a restart');
});

test('P2P: the newcomer offers to each participant; the others answer with target', async () => {
  const newcomer = makeClient();
  await newcomer.client.setMicrophone(true);
  const p = newcomer.client.join({ room: 'r', mode: 'p2p' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined({ mode: 'p2p', participants: [peer('b'), peer('c')] }));
  await p;
  await settle();
  assert.equal(newcomer.client.peerConnections().length, 2);
  const offers = ws.sentOfType('offer');
  assert.deepEqual(offers.map((o) => o.target).sort(), ['b', 'c']);

  // The other side: told of the newcomer, it waits for the offer, then answers.
  reset();
  const old = makeClient();
  await old.client.setCamera(true);
  const q = old.client.join({ room: 'r' });
  const ws2 = FakeWebSocket.last;
  ws2.open();
  ws2.receive(joined({ clientId: 'b', mode: 'p2p' }));
  await q;
  ws2.receive({ type: 'participant-joined', participant: peer('me') });
  await settle();
  assert.equal(ws2.sentOfType('offer').length, 0, 'no competing offer');
  ws2.receive({ type: 'offer', from: 'me', target: 'b', sdp: offers[0].sdp });
  await settle();
  const answers = ws2.sentOfType('answer');
  assert.equal(answers.length, 1);
  assert.equal(answers[0].target, 'me');
  assert.match(answers[0].sdp, /a=setup:active/, 'between browsers the DTLS role is left to the browser');
  const pc = FakePeerConnection.last;
  const video = pc.transceivers.find((t) => t.receiver.track.kind === 'video');
  assert.equal(video?.direction, 'sendrecv');
  assert.equal(video?.sender.track, old.client.local.tracks.camera, 'camera attached before answering');

  ws2.receive({ type: 'participant-left', id: 'me' });
  assert.equal(pc.connectionState, 'closed');
  assert.equal(old.client.peerConnections().length, 0);
  assert.deepEqual(old.events.filter((e) => e.startsWith('participant-')), ['participant-joined:me', 'participant-left:me']);
});

test('reconnects after a drop and resumes its place without anyone leaving', async () => {
  const { client, events } = makeClient();
  const p = client.join({ room: 'r', name: 'Me', mode: 'p2p' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined({ mode: 'p2p', participants: [peer('b')] }));
  await p;
  await settle();
  const pc = FakePeerConnection.last;
  ws.drop();
  assert.equal(client.signaling?.state, 'reconnecting');
  await settle();
  const ws2 = FakeWebSocket.last;
  assert.notEqual(ws2, ws, 'a new socket after the backoff');
  ws2.open();
  const rejoin = ws2.sentOfType('join')[0];
  assert.deepEqual(rejoin, { type: 'join', room: 'r', name: 'Me', mode: 'p2p', resume: 'secret', redirect: true });
  ws2.receive(joined({ mode: 'p2p', participants: [peer('b')], resumed: true }));
  assert.equal(client.id, 'me');
  assert.equal(client.peerConnections()[0], pc, 'peer connection kept');
  assert.notEqual(pc.connectionState, 'closed');
  assert.ok(!events.includes('participant-left:b'));
  assert.equal(ws2.sentOfType('media-state').length, 1, 'media state re-sent');
  const states = events.filter((e) => e.startsWith('signaling-state'));
  assert.deepEqual(states, ['signaling-state:connecting', 'signaling-state:open', 'signaling-state:reconnecting', 'signaling-state:open']);
});

test('a resume that comes too late starts over as a newcomer', async () => {
  const { client, events } = makeClient();
  const p = client.join({ room: 'r', mode: 'p2p' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined({ mode: 'p2p', participants: [peer('b')] }));
  await p;
  await settle();
  const oldPc = FakePeerConnection.last;
  ws.drop();
  await settle();
  const ws2 = FakeWebSocket.last;
  ws2.open();
  ws2.receive(joined({ clientId: 'me2', mode: 'p2p', participants: [peer('b')], resumed: false, resumeToken: 'new' }));
  await settle();
  assert.equal(oldPc.connectionState, 'closed');
  assert.equal(client.id, 'me2');
  assert.deepEqual(events.filter((e) => e.startsWith('participant-')), ['participant-joined:b', 'participant-left:b', 'participant-joined:b']);
  assert.deepEqual(ws2.sentOfType('offer').map((o) => o.target), ['b'], 'offers afresh');
});

test('leave closes connections, stops tracks and waits for `left`', async () => {
  const { client, events } = makeClient();
  await client.setCamera(true);
  await client.setMicrophone(true);
  const cam = client.local.tracks.camera;
  const p = client.join({ room: 'r' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined({ participants: [peer('b')] }));
  await p;
  const pc = FakePeerConnection.last;
  const leaving = client.leave();
  assert.deepEqual(ws.sentOfType('leave'), [{ type: 'leave' }]);
  ws.receive({ type: 'left', room: 'r' });
  await leaving;
  assert.equal(pc.connectionState, 'closed');
  assert.equal(cam?.readyState, 'ended');
  assert.equal(client.room, null);
  assert.deepEqual(events.slice(-2), ['participant-left:b', 'left']);
});

test('a denied camera is reported as media_permission_denied', async () => {
  const devices = new FakeMediaDevices();
  devices.denied.add('video');
  const client = new RoomClient({ url: 'ws://x', WebSocket: /** @type {any} */ (FakeWebSocket), MediaStream: /** @type {any} */ (FakeMediaStream), mediaDevices: /** @type {any} */ (devices) });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  await assert.rejects(client.setCamera(true), (e) => e.code === 'media_permission_denied' && e.source === 'camera');
  assert.equal(errors.length, 1);
  await client.setMicrophone(true);
  assert.deepEqual(client.localState(), { microphone: true, camera: false, screen: false });
});

test('P2P: an offer left unanswered is made again, and a stale answer is ignored', async () => {
  const { client, events } = makeClient({ offerRetryMs: 300 });
  const p = client.join({ room: 'r', mode: 'p2p' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined({ mode: 'p2p', participants: [peer('b')] }));
  await p;
  await settle();
  assert.equal(ws.sentOfType('offer').length, 1);
  await waitFor(() => ws.sentOfType('offer').length >= 2, 10000);
  const offers = ws.sentOfType('offer');
  assert.notEqual(offers[1].sdp, offers[0].sdp);
  // One answer completes the exchange (the offers differ only in version);
  // answers to the earlier copies, arriving later, are dropped without an error.
  const pc = FakePeerConnection.last;
  ws.receive({ type: 'answer', from: 'b', sdp: 'answer' });
  await settle();
  assert.equal(pc.signalingState, 'stable');
  const offersWhenAnswered = ws.sentOfType('offer').length;
  ws.receive({ type: 'answer', from: 'b', sdp: 'late answer to an earlier copy' });
  await settle();
  assert.equal(pc.signalingState, 'stable');
  assert.ok(!events.some((e) => e.startsWith('error')), events.join());
  // Past the retry time: nothing is offered again.
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(ws.sentOfType('offer').length, offersWhenAnswered, 'no more offers once answered');
});

test('a view-only join releases local media and asks for no device afterwards', async () => {
  const devices = new FakeMediaDevices();
  let asked = 0;
  const gum = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (c) => {
    asked++;
    return gum(c);
  };
  const { client, events } = makeClient({ mediaDevices: devices });
  await client.setCamera(true);
  const cam = client.local.tracks.camera;
  const p = client.join({ room: 'r' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined({ permissions: { publish: false, subscribe: true } }));
  await p;
  await settle();
  assert.equal(cam?.readyState, 'ended', 'the camera started before the join is stopped');
  assert.deepEqual(client.localState(), { microphone: false, camera: false, screen: false });
  assert.deepEqual(ws.sentOfType('media-state').at(-1), { type: 'media-state', microphone: false, camera: false, screen: false, tracks: [] });
  assert.equal(ws.sentOfType('offer').length, 0, 'nothing to offer: the server offers to a viewer');
  const before = asked;
  await assert.rejects(client.setCamera(true), (e) => e.code === 'permission_denied');
  await assert.rejects(client.setMicrophone(true), (e) => e.code === 'permission_denied');
  assert.equal(asked, before, 'no device asked for');
  assert.ok(events.includes('error:permission_denied'));
  // Turning things off is always allowed.
  await client.setMicrophone(false);
});

test('tokenPermissions reads the grants of a token without verifying it', () => {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jwt = (claims) => `${b64({ alg: 'HS256', kid: 'k' })}.${b64(claims)}.sig`;
  assert.deepEqual(tokenPermissions(jwt({ sub: 'a', grants: { publish: false } })), { publish: false, subscribe: true });
  assert.deepEqual(tokenPermissions(jwt({ sub: 'a', name: 'Zoë ✓' })), { publish: true, subscribe: true });
  assert.deepEqual(tokenPermissions(jwt({ sub: 'a', grants: { join: true, publish: true, subscribe: false } })), { publish: true, subscribe: false });
  assert.equal(tokenPermissions(undefined), null);
  assert.equal(tokenPermissions('not.a-token'), null);
  assert.equal(tokenPermissions('garbage'), null);
});

/** Joins an SFU room with camera and microphone on; resolves once the first offer is out. */
async function joinPublishing(extra = {}) {
  const made = makeClient(extra);
  await made.client.setCamera(true);
  await made.client.setMicrophone(true);
  const p = made.client.join({ room: 'r' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined());
  await p;
  await settle();
  return { ...made, ws, pc: FakePeerConnection.last };
}

test('SFU: after a later glare, a rolled-back transceiver is renewed and offered again', async () => {
  const { client, events, ws, pc } = await joinPublishing();
  ws.receive({ type: 'answer', sdp: 'answer 1 m=2' }); // the first round completes
  await settle();
  await client.setScreenShare(true);
  await settle();
  const share = pc.transceivers.at(-1);
  assert.equal(share.mid, '2');
  ws.receive({ type: 'offer', sdp: 'offer 1 m=3' }); // the server's, crossing ours
  await settle();
  assert.equal(pc.rolledBack, 1);
  assert.equal(ws.sentOfType('answer').length, 1);
  // Chromium may refuse to offer the old one again (header-extension ids): it is replaced.
  assert.equal(share.direction, 'stopped');
  const renewed = pc.transceivers.filter((t) => t.direction === 'sendonly' && t.sender.track === client.local.tracks.screen);
  assert.equal(renewed.length, 1);
  assert.equal(ws.sentOfType('offer').length, 3, 'offered again');
  assert.ok(events.includes('connection-recovery:renew-transceivers'));
  ws.receive({ type: 'answer', sdp: 'answer 2 m=5' });
  await settle();
  assert.ok(renewed[0].mid !== null && renewed[0].currentDirection === 'sendonly');
  assert.ok(!events.some((e) => e.startsWith('error')), events.join());
});

test('SFU: an offer the browser refuses is made again once with renewed transceivers', async () => {
  FakePeerConnection.refuseOffers = 1;
  const { events, ws, pc } = await joinPublishing();
  assert.equal(ws.sentOfType('offer').length, 1, 'the second try went out');
  assert.equal(pc.transceivers.filter((t) => t.direction === 'stopped').length, 2);
  assert.ok(!events.some((e) => e.startsWith('error')), events.join());
});

test('SFU: a track that never got negotiated is offered again, and a connection that does not come up restarts ICE', async () => {
  FakePeerConnection.refuseOffers = 2; // the first offer and its immediate retry
  const { events, ws, pc } = await joinPublishing({ recovery: { checkMs: 5, settleMs: 30, connectMs: 300 } });
  assert.ok(events.includes('error:negotiation_failed'), 'the first offer and its retry were refused');
  // The watchdog sees sendonly transceivers without a mid and offers again.
  await waitFor(() => ws.sentOfType('offer').length === 1);
  ws.receive({ type: 'answer', sdp: 'answer 1 m=2' });
  await settle();
  assert.equal(pc.signalingState, 'stable');
  // The connection stays `new` (nothing connects in this fake): ICE is restarted.
  await waitFor(() => (pc.iceRestarts ?? 0) >= 1);
  await waitFor(() => ws.sentOfType('offer').length === 2);
  // (More ICE restarts may follow on a very slow machine, each twice as late.)
  assert.deepEqual(events.filter((e) => e.startsWith('connection-recovery')).slice(0, 4), [
    'connection-recovery:renew-transceivers', // the immediate retry of the refused offer
    'connection-recovery:renegotiate', // the watchdog, which renews them again
    'connection-recovery:renew-transceivers',
    'connection-recovery:restart-ice',
  ]);
  // Once connected, nothing more happens.
  ws.receive({ type: 'answer', sdp: 'answer 2 m=2' });
  pc.setConnectionState('connected');
  await settle();
  const restarts = pc.iceRestarts;
  const offers = ws.sentOfType('offer').length;
  await new Promise((r) => setTimeout(r, 700)); // past connectMs
  assert.equal(pc.iceRestarts, restarts);
  assert.equal(ws.sentOfType('offer').length, offers);
});

test('SFU: when the server\'s offer cannot be applied, the client leaves and joins again as a newcomer', async () => {
  const { client, events, ws, pc } = await joinPublishing();
  ws.receive({ type: 'answer', sdp: 'answer 1 m=2' });
  await settle();
  ws.receive({ type: 'participant-joined', participant: peer('b') });
  ws.receive({ type: 'offer', sdp: 'offer 1 m=4 unusable' });
  await settle();
  assert.ok(events.includes('error:negotiation_failed'));
  assert.ok(events.includes('connection-recovery:rejoin'));
  assert.deepEqual(ws.sentOfType('leave'), [{ type: 'leave' }]);
  ws.receive({ type: 'left', room: 'r' });
  await settle();
  assert.deepEqual(ws.sentOfType('join').at(-1), { type: 'join', room: 'r', redirect: true }, 'a plain join, no resume');
  assert.ok(!events.includes('left'), 'the page is not told the call ended');
  ws.receive(joined({ clientId: 'me2', participants: [peer('b')], resumeToken: 'other' }));
  await settle();
  assert.equal(client.id, 'me2');
  assert.equal(pc.connectionState, 'closed', 'the old connection is closed');
  const pc2 = FakePeerConnection.last;
  assert.notEqual(pc2, pc);
  assert.deepEqual(client.peerConnections(), [pc2]);
  assert.equal(pc2.signalingState, 'have-local-offer', 'the tracks are offered on the new connection');
  assert.ok(client.local.tracks.camera && client.local.tracks.camera.readyState === 'live', 'local media stays on');
  assert.deepEqual(events.filter((e) => /participant-(left|joined):b/.test(e)), ['participant-joined:b', 'participant-left:b', 'participant-joined:b']);
});

/** Waits until `fn()` is true, up to `ms` (a generous bound, not a measure). */
async function waitFor(fn, ms = 10000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`condition not met in ${ms} ms: ${fn}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('stream-state: a remote video the server stopped sending for bandwidth, and sends again, is reported and remembered', async () => {
  const { client } = makeClient();
  /** @type {any[]} */
  const states = [];
  client.on('stream-state', (d) => states.push(d));
  const p = client.join({ room: 'r', name: 'Me', token: 'tok' });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.receive(joined({ participants: [peer('b')] }));
  await p;
  ws.receive({ type: 'stream-state', participant: 'b', track: 't1', paused: true, reason: 'bandwidth' });
  assert.deepEqual(states, [{ participantId: 'b', trackId: 't1', track: null, paused: true, reason: 'bandwidth' }]);
  assert.equal(client.serverPaused('b', 't1'), 'bandwidth');
  assert.equal(client.serverPaused('b', 't2'), null, 'only the named track');
  ws.receive({ type: 'stream-state', participant: 'b', track: 't1', paused: false });
  assert.deepEqual(states[1], { participantId: 'b', trackId: 't1', track: null, paused: false, reason: null });
  assert.equal(client.serverPaused('b', 't1'), null);
  // Malformed messages change nothing.
  ws.receive({ type: 'stream-state', participant: 7, track: 't1', paused: true });
  assert.equal(states.length, 2);
  // A participant who leaves takes its paused tracks along.
  ws.receive({ type: 'stream-state', participant: 'b', track: 't1', paused: true, reason: 'bandwidth' });
  ws.receive({ type: 'participant-left', id: 'b' });
  assert.equal(client.serverPaused('b', 't1'), null);
});
