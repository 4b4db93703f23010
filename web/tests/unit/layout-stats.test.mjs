// Pure parts of the demo room and the SDK: the grid shape for 1 to 25
// tiles, and turning getStats() reports into bitrate, loss, RTT, codec and
// resolution.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gridShape } from '../../demo/tiles.js';
import { summarizeStats, qualityOf } from '../../sdk/stats.js';

test('grid shape adapts from 1 to 25 tiles', () => {
  const shapes = Object.fromEntries([1, 2, 3, 4, 5, 9, 10, 16, 17, 25].map((n) => [n, gridShape(n, false)]));
  assert.deepEqual(shapes[1], { cols: 1, rows: 1 });
  assert.deepEqual(shapes[2], { cols: 2, rows: 1 });
  assert.deepEqual(shapes[4], { cols: 2, rows: 2 });
  assert.deepEqual(shapes[5], { cols: 3, rows: 2 });
  assert.deepEqual(shapes[10], { cols: 4, rows: 3 });
  assert.deepEqual(shapes[25], { cols: 5, rows: 5 });
  for (let n = 1; n <= 25; n++) {
    const { cols, rows } = gridShape(n, false);
    assert.ok(cols * rows >= n && cols * (rows - 1) < n, `${n} tiles fit without an empty row`);
    assert.ok(cols - rows <= 1 && cols >= rows, `${n} tiles: near square`);
  }
  // A phone stacks one or two tiles and never uses more than two columns.
  assert.deepEqual(gridShape(2, true), { cols: 1, rows: 2 });
  assert.deepEqual(gridShape(9, true), { cols: 2, rows: 5 });
  assert.deepEqual(gridShape(0, false), { cols: 1, rows: 1 });
});

/** @param {object[]} entries */
const report = (entries) => new Map(entries.map((e) => [e.id, e]));

test('stats: a short sound between two polls counts in the audio level, not only the level of the moment', () => {
  const memory = new Map();
  // A 20 ms beep at full scale every 500 ms, polled every 500 ms just
  // after the level of the moment has gone back to silence.
  const at = (t, beeps) =>
    report([
      { id: 'in1', type: 'inbound-rtp', kind: 'audio', timestamp: t, bytesReceived: 0, packetsReceived: 0, packetsLost: 0, audioLevel: 0, totalAudioEnergy: beeps * 0.02, totalSamplesDuration: t / 1000 },
      { id: 'src', type: 'media-source', kind: 'audio', audioLevel: 0, totalAudioEnergy: beeps * 0.02, totalSamplesDuration: t / 1000 },
      { id: 'out1', type: 'outbound-rtp', kind: 'audio', timestamp: t, bytesSent: 0, packetsSent: 0, mediaSourceId: 'src' },
    ]);
  const first = summarizeStats(at(1000, 2), memory);
  assert.deepEqual(first.map((r) => r.audioLevel), [0, 0], 'one sample: the level of the moment');
  const rows = summarizeStats(at(1500, 3), memory);
  for (const r of rows) assert.ok(Math.abs((r.audioLevel ?? 0) - 0.2) < 1e-9, `${r.direction}: sqrt(0.02 / 0.5) = 0.2, got ${r.audioLevel}`);
  const silent = summarizeStats(at(2000, 3), memory);
  assert.deepEqual(silent.map((r) => r.audioLevel), [0, 0], 'no sound since the last poll');
});

test('stats: bitrate and loss from deltas, RTT, codec and resolution', () => {
  const memory = new Map();
  const at = (t, bytes, packets, lost) =>
    report([
      { id: 'c1', type: 'codec', mimeType: 'video/VP8' },
      { id: 'pair', type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.042 },
      { id: 'in1', type: 'inbound-rtp', kind: 'video', timestamp: t, bytesReceived: bytes, packetsReceived: packets, packetsLost: lost, codecId: 'c1', trackIdentifier: 'remote-cam', frameWidth: 640, frameHeight: 360, framesPerSecond: 30, framesDecoded: 90 },
      { id: 'src', type: 'media-source', trackIdentifier: 'my-mic', audioLevel: 0.3 },
      { id: 'out1', type: 'outbound-rtp', kind: 'audio', timestamp: t, bytesSent: bytes / 10, packetsSent: packets, mediaSourceId: 'src', remoteId: 'rin' },
      { id: 'rin', type: 'remote-inbound-rtp', packetsLost: lost * 2, roundTripTime: 0.1 },
    ]);
  const first = summarizeStats(at(1000, 0, 0, 0), memory);
  assert.equal(first.find((r) => r.id === 'in1')?.bitrateKbps, 0, 'no rate from one sample');
  const rows = summarizeStats(at(2000, 125000, 95, 5), memory);
  const video = rows.find((r) => r.direction === 'in');
  assert.deepEqual(
    { kbps: video?.bitrateKbps, loss: video?.lossPercent, lost: video?.packetsLost, rtt: video?.rttMs, codec: video?.codec, w: video?.width, h: video?.height, track: video?.trackId },
    { kbps: 1000, loss: 5, lost: 5, rtt: 42, codec: 'VP8', w: 640, h: 360, track: 'remote-cam' },
  );
  const audio = rows.find((r) => r.direction === 'out');
  assert.deepEqual({ kbps: audio?.bitrateKbps, lost: audio?.packetsLost, rtt: audio?.rttMs, track: audio?.trackId, level: audio?.audioLevel }, { kbps: 100, lost: 10, rtt: 100, track: 'my-mic', level: 0.3 });
  assert.equal(qualityOf(rows), 'fair', 'about 9.5% upstream loss: between 3% and 10%');
  assert.equal(qualityOf([]), 'unknown');
  assert.equal(qualityOf([{ .../** @type {any} */ (video), lossPercent: 0, rttMs: 20 }]), 'good');
  assert.equal(qualityOf([{ .../** @type {any} */ (video), lossPercent: 12, rttMs: 20 }]), 'poor');
});
