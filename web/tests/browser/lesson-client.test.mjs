// Issue 8 (1): the classic two-person client of the WebRTC lessons, a page
// written against the plain browser API only, calls through the server's
// classic relay. It sends `sdp` as the description object and `candidate` as
// the candidate object, and feeds what it receives straight to
// `new RTCSessionDescription(data.sdp)` and `new RTCIceCandidate(data.candidate)`.
// The page is served from another origin, as a lesson's page would be.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { session, hostPageServer, waitInPage, waitForMediaFlow } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const LESSON = fs.readFileSync(path.join(here, 'fixtures/lesson-client.html'), 'utf8');
const lessonClient = '({ peerConnections: () => (window.lesson.pc ? [window.lesson.pc] : []) })';
const classicClient = '({ peerConnections: () => (window.classic.pc ? [window.classic.pc] : []) })';

/** Records every frame the page sends and receives, parsed. */
function recordFrames() {
  const sent = [];
  const received = [];
  const Native = WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => received.push(JSON.parse(e.data)));
    }
    send(data) {
      sent.push(JSON.parse(data));
      return super.send(data);
    }
  };
  window.__frames = { sent, received };
}

/** Checks the shapes of the call's messages in one direction. */
function assertObjectShapes(frames, who) {
  const sdps = frames.filter((m) => m.type === 'offer' || m.type === 'answer');
  const candidates = frames.filter((m) => m.type === 'ice-candidate');
  assert.ok(sdps.length >= 1, `${who}: an offer or answer`);
  for (const m of sdps) {
    assert.equal(typeof m.sdp, 'object', `${who}: sdp is the description object`);
    assert.equal(m.sdp.type, m.type);
    assert.match(m.sdp.sdp, /^v=0\r\n/);
  }
  assert.ok(candidates.length >= 1, `${who}: at least one candidate`);
  for (const m of candidates) {
    assert.equal(typeof m.candidate, 'object', `${who}: candidate is the candidate object`);
    assert.match(m.candidate.candidate, /^candidate:/);
    assert.ok('sdpMid' in m.candidate && 'sdpMLineIndex' in m.candidate, `${who}: candidate keeps sdpMid and sdpMLineIndex`);
  }
}

/** Asks for the client list until `id` is in it. */
async function waitForPeer(page, listed, refresh, id) {
  await waitInPage(page, ({ listed, refresh, id }) => {
    const peers = eval(listed);
    if (!peers?.includes(id)) eval(refresh);
    return peers?.includes(id);
  }, { listed, refresh, id });
}

test('the WebRTC lessons\' classic client calls through the relay with object-shaped sdp and candidate', async (t) => {
  const s = await session(t);
  const host = await hostPageServer((p) => (p.startsWith('/lesson') ? LESSON : '<!doctype html><title>blank</title>'));
  t.after(host.close);
  const url = `${host.origin}/lesson.html?ws=${encodeURIComponent(`ws://127.0.0.1:${s.server.port}/ws`)}`;
  const pages = [];
  for (const name of ['caller', 'callee']) {
    const p = await s.participant(`${host.origin}/blank`, { name });
    await p.addInitScript(recordFrames);
    await p.goto(url);
    await p.evaluate(() => window.lesson.ready);
    pages.push(p);
  }
  const [a, b] = pages;
  const aId = await waitInPage(a, () => window.lesson.myId);
  const bId = await waitInPage(b, () => window.lesson.myId);
  await waitForPeer(a, 'window.lesson.peers', 'window.lesson.refresh()', bId);
  await a.selectOption('#peers', bId);
  await a.click('#call');

  for (const p of [a, b]) {
    const stats = await waitForMediaFlow(p, { clientExpr: lessonClient });
    assert.ok(stats.video.frameWidth > 0, 'decoded video has a width');
    assert.deepEqual(stats.states, ['connected']);
    await waitInPage(p, () => document.getElementById('remoteVideo').videoWidth > 0);
  }

  // What went over the wire: objects both ways, relayed unchanged plus `from`.
  const fa = await a.evaluate(() => window.__frames);
  const fb = await b.evaluate(() => window.__frames);
  assertObjectShapes(fa.sent, 'caller sent');
  assertObjectShapes(fb.sent, 'callee sent');
  for (const [frames, from, sent] of [[fb.received, aId, fa.sent], [fa.received, bId, fb.sent]]) {
    const relayed = frames.filter((m) => ['offer', 'answer', 'ice-candidate'].includes(m.type));
    assertObjectShapes(relayed, `received from ${from}`);
    const original = sent.filter((m) => ['offer', 'answer', 'ice-candidate'].includes(m.type));
    assert.deepEqual(relayed, original.map((m) => ({ ...m, from })), 'relayed unchanged, with `from` added');
  }
  assert.deepEqual(fa.received.filter((m) => m.type === 'error'), []);
  assert.deepEqual(fb.received.filter((m) => m.type === 'error'), []);
  s.passed();
});

test('the lessons\' client and the demo\'s classic page call each other', async (t) => {
  const s = await session(t);
  const host = await hostPageServer(() => LESSON);
  t.after(host.close);
  const lesson = await s.participant(`${host.origin}/lesson.html?ws=${encodeURIComponent(`ws://127.0.0.1:${s.server.port}/ws`)}`, { name: 'lesson' });
  await lesson.evaluate(() => window.lesson.ready);
  const classic = await s.participant('/demo/classic.html', { name: 'classic' });
  const lessonId = await waitInPage(lesson, () => window.lesson.myId);
  const classicId = await waitInPage(classic, () => window.classic?.id);

  // The demo page calls the lesson page, which understands only objects.
  await waitForPeer(classic, 'window.classic.peers', "document.getElementById('refresh').click()", lessonId);
  await classic.selectOption('#peers', lessonId);
  await classic.click('#call');
  for (const [p, expr] of [[lesson, lessonClient], [classic, classicClient]]) {
    const stats = await waitForMediaFlow(p, { clientExpr: expr });
    assert.ok(stats.video.frameWidth > 0);
  }
  assert.equal(await lesson.evaluate(() => document.getElementById('state').textContent), 'connected');
  assert.equal(await classic.evaluate(() => window.classic.peer), lessonId);
  assert.ok(classicId);
  s.passed();
});
