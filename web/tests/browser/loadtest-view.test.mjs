// Issue 4: a browser joining a load-test room sees and hears the bots. The
// `loadtest` binary publishes its VP8 test-pattern clip and Opus clip into
// an SFU room; the demo page, opened in that room, decodes the bot's video
// (frames rising, a real picture) and receives its audio.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { session, waitInPage, waitForMediaFlow, videoHasPicture } from './harness.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The load-test binary: $LOADTEST_BIN, else the release build beside the server. */
const LOADTEST_BIN = process.env.LOADTEST_BIN ?? path.join(repo, 'target/release/loadtest');

test('a browser in a load-test room decodes the bot publisher\'s video and audio', async (t) => {
  assert.ok(fs.existsSync(LOADTEST_BIN), `load-test binary not found: ${LOADTEST_BIN} (cargo build --release -p loadtest)`);
  const s = await session(t);
  const prefix = `lt-view-${Date.now()}`;
  const room = `${prefix}-0`; // loadtest names its rooms <prefix>-<n>

  let out = '';
  const bots = spawn(
    LOADTEST_BIN,
    ['run', '--url', s.server.url, '--room', prefix, '--rooms', '1', '--publishers', '1', '--subscribers', '0',
      '--duration', '120s', '--warmup', '1s', '--quiet'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  bots.stdout.on('data', (b) => { out += b; });
  bots.stderr.on('data', (b) => { out += b; });
  const exited = new Promise((r) => bots.once('exit', r));
  s.defer(async () => {
    if (bots.exitCode === null) bots.kill('SIGKILL');
    await exited;
  });

  // Wait for the bot to be in the room, so the viewer joins an SFU room it made.
  const deadline = Date.now() + 60000;
  for (;;) {
    const stats = await (await fetch(`${s.server.url}/api/stats`)).json();
    if (stats.signaling.participants >= 1) break;
    assert.ok(Date.now() < deadline, `the bot did not join:\n${out}`);
    assert.equal(bots.exitCode, null, `loadtest exited early:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const page = await s.participant(`/?room=${room}&name=viewer&autojoin=1`, { name: 'viewer' });
  await waitInPage(page, () => window.demo.client?.room && window.demo.client.id);
  const flow = await waitForMediaFlow(page, { timeout: 60000 });
  assert.ok(flow.video.framesDecoded > 5, JSON.stringify(flow));
  assert.equal(flow.video.frameWidth, 640, 'the 500 kbps clip is 640x360');
  // The tile shows the test pattern, not a black frame.
  await waitInPage(page, () => [...document.querySelectorAll('[data-participant] video')].some((v) => v.videoWidth > 0));
  let picture = false;
  for (const deadline = Date.now() + 60000; !picture && Date.now() < deadline; ) {
    picture = await videoHasPicture(page, '[data-participant] video');
    if (!picture) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(picture, 'the bot\'s video tile shows a picture');
  s.passed();
});
