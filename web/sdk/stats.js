// Turns RTCStatsReports into what a person reads: per-track bitrate, packet
// loss, round-trip time, codec and resolution, and an overall quality level.

/**
 * @typedef {{
 *   id: string, direction: 'in'|'out', kind: 'audio'|'video', trackId?: string,
 *   bitrateKbps: number, packetsLost: number, lossPercent: number, rttMs: number | null,
 *   codec: string, width?: number, height?: number, fps?: number, framesDecoded?: number, audioLevel?: number,
 * }} TrackStats
 * @typedef {Map<string, { bytes: number, packets: number, lost: number, timestamp: number, energy?: number, duration?: number }>} StatsMemory
 */

/**
 * The audio level over the interval since the previous report (root mean
 * square from the energy and duration counters), or at least the level of
 * the moment. A level of the moment alone misses short sounds: it covers
 * the last 100 ms or so, and a poll every 500 ms can stay in step with a
 * sound that repeats every 500 ms and never see it.
 * @param {any} s stats object with the audio counters (inbound-rtp or media-source)
 * @param {{ energy?: number, duration?: number } | undefined} prev
 * @returns {number | undefined}
 */
function intervalAudioLevel(s, prev) {
  const now = s?.audioLevel;
  if (typeof s?.totalAudioEnergy !== 'number' || typeof s?.totalSamplesDuration !== 'number') return now;
  if (prev?.energy === undefined || prev.duration === undefined) return now;
  const de = s.totalAudioEnergy - prev.energy;
  const dd = s.totalSamplesDuration - prev.duration;
  if (!(dd > 0) || !(de >= 0)) return now;
  return Math.max(now ?? 0, Math.sqrt(de / dd));
}

/**
 * @param {RTCStatsReport} report
 * @param {StatsMemory} memory previous counters (updated in place) for rates
 * @returns {TrackStats[]}
 */
export function summarizeStats(report, memory) {
  /** @type {Map<string, any>} */
  const all = new Map();
  report.forEach((s) => all.set(s.id, s));
  let pairRtt = null;
  for (const s of all.values()) {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && typeof s.currentRoundTripTime === 'number') {
      pairRtt = Math.round(s.currentRoundTripTime * 1000);
    }
  }
  /** @type {TrackStats[]} */
  const rows = [];
  for (const s of all.values()) {
    if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') continue;
    const inbound = s.type === 'inbound-rtp';
    const bytes = inbound ? s.bytesReceived ?? 0 : s.bytesSent ?? 0;
    const packets = inbound ? s.packetsReceived ?? 0 : s.packetsSent ?? 0;
    let lost = inbound ? s.packetsLost ?? 0 : 0;
    let rtt = pairRtt;
    if (!inbound && s.remoteId) {
      const remote = all.get(s.remoteId);
      if (remote) {
        lost = remote.packetsLost ?? 0;
        if (typeof remote.roundTripTime === 'number') rtt = Math.round(remote.roundTripTime * 1000);
      }
    }
    const prev = memory.get(s.id);
    let bitrateKbps = 0;
    let lossPercent = 0;
    if (prev && s.timestamp > prev.timestamp) {
      bitrateKbps = Math.round(((bytes - prev.bytes) * 8) / (s.timestamp - prev.timestamp));
      const dp = packets - prev.packets;
      const dl = lost - prev.lost;
      lossPercent = dp + dl > 0 ? Math.max(0, Math.round((1000 * dl) / (dp + dl)) / 10) : 0;
    }
    // An audio stream's level counters: its own when received, its
    // source's when sent.
    const audio = s.kind !== 'audio' ? undefined : inbound ? s : all.get(s.mediaSourceId);
    const audioLevel = intervalAudioLevel(audio, prev);
    memory.set(s.id, { bytes, packets, lost, timestamp: s.timestamp, energy: audio?.totalAudioEnergy, duration: audio?.totalSamplesDuration });
    const codec = all.get(s.codecId)?.mimeType?.split('/')[1] ?? '';
    const trackId = inbound ? s.trackIdentifier : all.get(s.mediaSourceId)?.trackIdentifier;
    rows.push({
      id: s.id,
      direction: inbound ? 'in' : 'out',
      kind: s.kind,
      trackId,
      bitrateKbps,
      packetsLost: lost,
      lossPercent,
      rttMs: rtt,
      codec,
      width: s.frameWidth,
      height: s.frameHeight,
      fps: s.framesPerSecond,
      framesDecoded: s.framesDecoded,
      audioLevel,
    });
  }
  return rows;
}

/**
 * A quality level from loss and round-trip time.
 * @param {TrackStats[]} rows
 * @returns {'good'|'fair'|'poor'|'unknown'}
 */
export function qualityOf(rows) {
  if (!rows.length) return 'unknown';
  const loss = Math.max(...rows.map((r) => r.lossPercent));
  const rtt = Math.max(...rows.map((r) => r.rttMs ?? 0));
  if (loss > 10 || rtt > 500) return 'poor';
  if (loss > 3 || rtt > 250) return 'fair';
  return 'good';
}
