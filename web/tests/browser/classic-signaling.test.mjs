// Issue 2: two pages that speak only the classic messages (registered,
// list-clients/clients-list, offer/answer/ice-candidate with target/from)
// get a call connected through the server: each decodes the other's video.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, waitInPage, waitForMediaFlow } from './harness.mjs';

const CLASSIC = new Set(['list-clients', 'offer', 'answer', 'ice-candidate']);

/** Records the type of every frame the page sends and receives. */
function recordFrames() {
  const sent = [];
  const received = [];
  const orig = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    sent.push(JSON.parse(data).type);
    if (!this.__recording) {
      this.__recording = true;
      this.addEventListener('message', (e) => received.push(JSON.parse(e.data).type));
    }
    return orig.call(this, data);
  };
  window.__frames = { sent, received };
}

test('classic signaling: two raw-WebSocket pages connect a call through the relay', async (t) => {
  const s = await session(t);
  const a = await s.participant('/demo/classic.html', { name: 'a' });
  await a.evaluate(() => {}); // loaded
  const b = await s.participant('/demo/classic.html', { name: 'b' });
  for (const p of [a, b]) await p.addInitScript(recordFrames);
  await a.reload();
  await b.reload();

  const bId = await waitInPage(b, () => window.classic?.id);
  // A asks for the list until B is in it, then calls B.
  await waitInPage(a, (id) => {
    if (window.classic?.id && !window.classic.peers.includes(id)) document.getElementById('refresh').click();
    return window.classic.peers.includes(id);
  }, bId);
  await a.selectOption('#peers', bId);
  await a.click('#call');

  const client = '({ peerConnections: () => (window.classic.pc ? [window.classic.pc] : []) })';
  for (const p of [a, b]) {
    const stats = await waitForMediaFlow(p, { clientExpr: client });
    assert.ok(stats.video.frameWidth > 0);
    await waitInPage(p, () => document.getElementById('remote').videoWidth > 0);
  }
  assert.equal(await b.evaluate(() => window.classic.peer), await a.evaluate(() => window.classic.id), 'B saw the offer come `from` A');

  for (const p of [a, b]) {
    const { sent, received } = await p.evaluate(() => window.__frames);
    assert.ok(sent.length > 0 && sent.every((type) => CLASSIC.has(type)), `only classic messages sent: ${sent}`);
    assert.ok(received.every((type) => ['registered', 'clients-list', ...CLASSIC].includes(type)), `only classic received: ${received}`);
  }
  s.passed();
});
