// Adaptive media in the SDK without a browser: the encodings a publisher
// asks for, dynacast applied to a sender's parameters, and the
// `track-settings` a subscriber sends (debounced, only on change) as
// elements are resized, hidden and shown, with fake observers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendEncodings, applyEncodings, svcModeFor } from '../../sdk/encodings.js';
import { TrackViews } from '../../sdk/track-views.js';

test('camera simulcast: q/h/f, lowest first, at a quarter, half and full size', () => {
  const e = sendEncodings('camera', { simulcast: true });
  assert.deepEqual(e?.map((x) => x.rid), ['q', 'h', 'f']);
  assert.deepEqual(e?.map((x) => x.scaleResolutionDownBy), [4, 2, 1]);
  const rates = e?.map((x) => x.maxBitrate ?? 0) ?? [];
  assert.ok(rates[0] < rates[1] && rates[1] < rates[2], `bitrates rise: ${rates}`);
  assert.equal(sendEncodings('screen', { simulcast: true })?.length, 2, 'a screen share has two');
  assert.equal(sendEncodings('camera', { simulcast: false }), undefined, 'one encoding when asked');
  assert.deepEqual(sendEncodings('camera', {})?.map((x) => x.rid), ['q', 'h', 'f'], 'simulcast by default');
  assert.equal(sendEncodings('microphone', { simulcast: true }), undefined);
  const svc = sendEncodings('camera', { codec: 'VP9' });
  assert.equal(svc?.length, 1, 'SVC: one encoding');
  assert.equal(svc?.[0].scalabilityMode, 'L3T3_KEY');
  assert.equal(sendEncodings('camera', { codec: 'AV1', scalabilityMode: 'L2T2' })?.[0].scalabilityMode, 'L2T2');
});

/**
 * A sender whose parameters start as `params`; `sets` counts setParameters.
 * @param {any} params
 */
function fakeSender(params) {
  const s = {
    params,
    sets: 0,
    getParameters: () => structuredClone(s.params),
    setParameters: async (/** @type {any} */ p) => {
      s.sets++;
      s.params = p;
    },
  };
  return s;
}

test('dynacast: the named encodings are turned off and on, once per change', async () => {
  const sender = /** @type {any} */ (fakeSender({ encodings: [{ rid: 'q', active: true }, { rid: 'h', active: true }, { rid: 'f', active: true }] }));
  assert.equal(await applyEncodings(sender, [{ rid: 'q', active: true }, { rid: 'h', active: false }, { rid: 'f', active: false }]), true);
  assert.deepEqual(sender.params.encodings.map((e) => e.active), [true, false, false]);
  assert.equal(await applyEncodings(sender, [{ rid: 'h', active: false }]), false, 'no change, no setParameters');
  assert.equal(sender.sets, 1);
  await applyEncodings(sender, [{ rid: 'f', active: true }, { rid: 'zz', active: false }]);
  assert.deepEqual(sender.params.encodings.map((e) => e.active), [true, false, true], 'unknown rids are ignored');
  // One encoding and no rid: the whole track.
  sender.params = { encodings: [{ active: true }] };
  await applyEncodings(sender, [{ active: false }]);
  assert.equal(sender.params.encodings[0].active, false);
});

test('SVC dynacast: fewer spatial layers at the sizes they had, and all of them back', async () => {
  assert.deepEqual(svcModeFor('L3T3_KEY', 1, 2), { mode: 'L2T3_KEY', scale: 2 });
  assert.deepEqual(svcModeFor('L3T3_KEY', 1, 1), { mode: 'L1T3', scale: 4 }, 'one layer has no _KEY structure');
  assert.deepEqual(svcModeFor('L3T2', 2, 5), { mode: 'L3T2', scale: 2 }, 'never more than published');
  assert.equal(svcModeFor('L1T3', 1, 1)?.mode, 'L1T3');
  assert.equal(svcModeFor('S3T3', 1, 1), null, 'no spatial layers inside one stream to drop');
  const sender = /** @type {any} */ (fakeSender({ encodings: [{ active: true, scalabilityMode: 'L3T3_KEY' }] }));
  assert.equal(await applyEncodings(sender, [{ active: true, spatialLayers: 1 }]), true);
  assert.equal(sender.params.encodings[0].scalabilityMode, 'L1T3');
  assert.equal(sender.params.encodings[0].scaleResolutionDownBy, 4);
  assert.equal(await applyEncodings(sender, [{ active: true, spatialLayers: 1 }]), false, 'no change, no setParameters');
  await applyEncodings(sender, [{ active: true, spatialLayers: 2 }]);
  assert.equal(sender.params.encodings[0].scalabilityMode, 'L2T3_KEY', 'from the mode as published, not the reduced one');
  assert.equal(sender.params.encodings[0].scaleResolutionDownBy, 2);
  await applyEncodings(sender, [{ active: true }]);
  assert.equal(sender.params.encodings[0].scalabilityMode, 'L3T3_KEY', 'absent: all of them');
  assert.equal(sender.params.encodings[0].scaleResolutionDownBy, 1);
  assert.equal(sender.sets, 3);
});

/** Fake ResizeObserver / IntersectionObserver driven by the test. */
function fakeObservers() {
  /** @type {((entries: any[]) => void)[]} */
  const resize = [];
  /** @type {((entries: any[]) => void)[]} */
  const intersection = [];
  const g = /** @type {any} */ (globalThis);
  g.ResizeObserver = class {
    /** @param {(e: any[]) => void} cb */
    constructor(cb) {
      resize.push(cb);
    }
    observe() {}
    unobserve() {}
    disconnect() {}
  };
  g.IntersectionObserver = class {
    /** @param {(e: any[]) => void} cb */
    constructor(cb) {
      intersection.push(cb);
    }
    observe() {}
    unobserve() {}
    disconnect() {}
  };
  return {
    /** @param {any} el @param {number} w @param {number} h */
    size(el, w, h) {
      resize.forEach((cb) => cb([{ target: el, contentRect: { width: w, height: h } }]));
    },
    /** @param {any} el @param {boolean} on */
    inView(el, on) {
      intersection.forEach((cb) => cb([{ target: el, isIntersecting: on }]));
    },
    remove() {
      delete g.ResizeObserver;
      delete g.IntersectionObserver;
    },
  };
}

const tick = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

test('track-settings: rendered size and visibility, debounced, only on change', async (t) => {
  const obs = fakeObservers();
  t.after(() => obs.remove());
  /** @type {any[]} */
  const sent = [];
  const views = new TrackViews((m) => sent.push(m), { debounceMs: 10 });
  const el = { isConnected: true, getBoundingClientRect: () => ({ width: 320, height: 180 }) };
  views.attach('pub', 'cam', /** @type {any} */ (el));
  await tick(30);
  assert.equal(sent.length, 0, 'nothing before the track arrived');
  views.arrived('pub', 'cam');
  await tick(30);
  assert.deepEqual(sent, [{ type: 'track-settings', participant: 'pub', track: 'cam', visible: true, width: 320, height: 180, paused: false }]);

  // A burst of resizes: one message with the last size.
  obs.size(el, 400, 225);
  obs.size(el, 500, 280);
  obs.size(el, 640, 360);
  await tick(30);
  assert.equal(sent.length, 2);
  assert.deepEqual([sent[1].width, sent[1].height], [640, 360]);
  // The same size again: nothing.
  obs.size(el, 640, 360);
  await tick(30);
  assert.equal(sent.length, 2);

  // Scrolled out of view, then zero size, then removed: not visible.
  obs.inView(el, false);
  await tick(30);
  assert.equal(sent.at(-1).visible, false);
  obs.inView(el, true);
  await tick(30);
  assert.equal(sent.at(-1).visible, true);
  obs.size(el, 0, 0);
  await tick(30);
  assert.equal(sent.at(-1).visible, false);
  obs.size(el, 640, 360);
  el.isConnected = false;
  await tick(30);
  assert.equal(sent.at(-1).visible, false, 'an element out of the document shows nothing');
  el.isConnected = true;
  obs.size(el, 640, 360);
  await tick(30);
  assert.equal(sent.at(-1).visible, true);

  // Choices travel with the view.
  views.choose('pub', 'cam', { quality: 'low' });
  views.choose('pub', 'cam', { maxWidth: 640, maxHeight: 360 });
  await tick(30);
  assert.deepEqual(sent.at(-1), { type: 'track-settings', participant: 'pub', track: 'cam', visible: true, width: 640, height: 360, quality: 'low', maxWidth: 640, maxHeight: 360, paused: false });
  views.choose('pub', 'cam', { paused: true });
  await tick(30);
  assert.equal(sent.at(-1).paused, true);

  // Detached from its only element: not shown any more.
  const n = sent.length;
  views.detach('pub', 'cam', /** @type {any} */ (el));
  await tick(30);
  assert.equal(sent.length, n + 1);
  assert.equal(sent.at(-1).visible, false);

  // On a new connection the server hears it again, even unchanged.
  views.resendAll();
  await tick(30);
  assert.equal(sent.length, n + 2);
  assert.deepEqual(sent.at(-1), sent.at(-2));

  // Gone: forgotten, nothing more is sent for it.
  views.gone('pub', 'cam');
  views.resendAll();
  await tick(30);
  assert.equal(sent.length, n + 2);
  views.close();
});

test('track-settings: a track never attached and without choices is not reported', async () => {
  /** @type {any[]} */
  const sent = [];
  const views = new TrackViews((m) => sent.push(m), { debounceMs: 5 });
  views.arrived('pub', 'mic');
  await tick(20);
  assert.deepEqual(sent, []);
  views.choose('pub', 'mic', { paused: true });
  await tick(20);
  assert.deepEqual(sent, [{ type: 'track-settings', participant: 'pub', track: 'mic', visible: true, width: 0, height: 0, paused: true }]);
  views.close();
});
