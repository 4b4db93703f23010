// onNetworkChange: the browser events that mean the network changed reach
// the callback, and nothing reaches it once stopped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onNetworkChange } from '../../sdk/network.js';

test('online and connection changes are reported until stopped', () => {
  const win = new EventTarget();
  const connection = new EventTarget();
  const env = {
    addEventListener: win.addEventListener.bind(win),
    removeEventListener: win.removeEventListener.bind(win),
    navigator: { connection },
  };
  let calls = 0;
  const stop = onNetworkChange(() => calls++, env);
  win.dispatchEvent(new Event('online'));
  connection.dispatchEvent(new Event('change'));
  win.dispatchEvent(new Event('offline'));
  assert.equal(calls, 2);
  stop();
  win.dispatchEvent(new Event('online'));
  connection.dispatchEvent(new Event('change'));
  assert.equal(calls, 2);
});

test('without the Network Information API only online is watched', () => {
  const win = new EventTarget();
  const env = { addEventListener: win.addEventListener.bind(win), removeEventListener: win.removeEventListener.bind(win), navigator: {} };
  let calls = 0;
  const stop = onNetworkChange(() => calls++, env);
  win.dispatchEvent(new Event('online'));
  stop();
  assert.equal(calls, 1);
  assert.doesNotThrow(() => onNetworkChange(() => {}, {})());
});
