// Issue 9: active speaker. Two publishers on the demo page: one's
// microphone is a loud WebAudio tone, the other's is silence (both are
// real audio tracks from the page's getUserMedia, replaced by an init
// script). The server's `active-speakers` names the loud one first, the
// SDK emits it, and the demo highlights that tile on the other's page; the
// quiet one joins second, so it hears a list that was already out. When
// the tone falls silent, or its source ends and no audio is sent at all,
// the loud one is no longer named.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { session, launchBrowser, waitInPage } from './harness.mjs';

/** Replaces the microphone with a 440 Hz tone of the given gain. */
function toneMicrophone(gain) {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    if (!c?.audio) return real(c);
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const g = ctx.createGain();
    g.gain.value = gain;
    osc.frequency.value = 440;
    const dest = ctx.createMediaStreamDestination();
    osc.connect(g).connect(dest);
    osc.start();
    await ctx.resume().catch(() => {});
    // @ts-ignore
    window.__tone = { ctx, osc, gain: g };
    return dest.stream;
  };
}

test('active speaker: the publisher sending a loud tone is named first and highlighted', async (t) => {
  const s = await session(t);
  const room = `speaker-${Date.now()}`;
  const url = (name) => `${s.server.url}/?room=${room}&mode=sfu&name=${name}&autojoin=1`;
  const pages = {};
  for (const [name, gain] of [['Loud', 0.9], ['Quiet', 0]]) {
    const b = await launchBrowser();
    s.defer(b.close);
    await b.page.addInitScript(toneMicrophone, gain);
    await b.page.goto(url(name), { waitUntil: 'domcontentloaded', timeout: 60000 });
    pages[name] = b.page;
  }
  const loudId = await waitInPage(pages.Loud, () => window.demo.client?.room && window.demo.client.id);
  const quietId = await waitInPage(pages.Quiet, () => window.demo.client?.room && window.demo.client.id);
  await waitInPage(pages.Loud, () => window.demo.client.localState().microphone);
  await waitInPage(pages.Quiet, () => window.demo.client.localState().microphone);

  // On the quiet publisher's page: the server names the loud one first,
  // and its tile is the highlighted one.
  const speakers = await waitInPage(
    pages.Quiet,
    (id) => {
      const list = window.demo.client.activeSpeakers;
      return list.length > 0 && list[0].id === id ? list : null;
    },
    loudId,
  );
  assert.ok(!speakers.some((sp) => sp.id === quietId && sp.level >= speakers[0].level), `the silent publisher is not louder: ${JSON.stringify(speakers)}`);
  console.log(`active speakers seen by the quiet publisher: ${JSON.stringify(speakers)}`);
  await waitInPage(pages.Quiet, (id) => document.querySelector(`[data-participant="${id}"]`)?.dataset.activeSpeaker === 'true', loudId);
  // The loud publisher sees itself as the speaker (its own tile).
  await waitInPage(pages.Loud, () => document.querySelector('[data-local]')?.dataset.activeSpeaker === 'true');
  assert.notEqual(await pages.Loud.evaluate((id) => document.querySelector(`[data-participant="${id}"]`)?.dataset.activeSpeaker, quietId), 'true');

  // The tone falls silent: the loud publisher is no longer named, and its
  // tile no longer highlighted.
  await pages.Loud.evaluate(() => window.__tone.gain.gain.setValueAtTime(0, window.__tone.ctx.currentTime));
  await waitInPage(pages.Quiet, (id) => !window.demo.client.activeSpeakers.some((sp) => sp.id === id), loudId);
  await waitInPage(pages.Quiet, (id) => document.querySelector(`[data-participant="${id}"]`)?.dataset.activeSpeaker === 'false', loudId);

  // Loud again, then its source ends (the browser stops sending audio
  // altogether): no longer named either.
  await pages.Loud.evaluate(() => window.__tone.gain.gain.setValueAtTime(0.9, window.__tone.ctx.currentTime));
  await waitInPage(pages.Quiet, (id) => window.demo.client.activeSpeakers[0]?.id === id, loudId);
  await pages.Loud.evaluate(() => window.__tone.osc.stop());
  await waitInPage(pages.Quiet, (id) => !window.demo.client.activeSpeakers.some((sp) => sp.id === id), loudId);
  s.passed();
});
