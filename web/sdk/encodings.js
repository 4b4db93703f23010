// How local video goes out to an SFU: simulcast encodings (three for the
// camera, two for a screen share), or one encoding with spatial layers
// inside it (SVC: VP9, AV1), the preferred codec, and the server's dynacast
// requests (`publisher-encodings`) applied to the sender's encodings.
//
// The server lists a track's encodings in the order of their `a=rid` lines,
// which follow `sendEncodings`: the lowest quality goes first.

/**
 * @typedef {'VP8'|'VP9'|'AV1'|'H264'} VideoCodec
 * @typedef {{ simulcast?: boolean, codec?: VideoCodec, scalabilityMode?: string }} PublishOptions
 *   simulcast: several encodings of camera and screen (the default), or
 *   one (false).
 *   codec: the preferred video codec (default VP8). VP9 and AV1 send one
 *   encoding with spatial and temporal layers (`scalabilityMode`, default
 *   L3T3_KEY) instead of simulcast.
 */

/** Camera simulcast, lowest first: 320x180, 640x360 and 1280x720 from a 720p camera. */
export const CAMERA_ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** Screen-share simulcast: half size for thumbnails, full size for reading. */
export const SCREEN_ENCODINGS = [
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
];

/** The SVC mode used for VP9 and AV1 unless another is asked for. */
export const DEFAULT_SVC_MODE = 'L3T3_KEY';

/** Temporal layers inside each simulcast encoding, where the codec has them. */
const SIMULCAST_TEMPORAL_MODE = 'L1T3';

/**
 * The `sendEncodings` for a new transceiver of `source` in an SFU room,
 * or undefined for the browser's default (one encoding).
 * @param {'microphone'|'camera'|'screen'} source
 * @param {PublishOptions} opts
 * @returns {RTCRtpEncodingParameters[] | undefined}
 */
export function sendEncodings(source, opts) {
  if (source === 'microphone') return undefined;
  const codec = opts.codec ?? 'VP8';
  if (codec === 'VP9' || codec === 'AV1') {
    const mode = opts.scalabilityMode ?? DEFAULT_SVC_MODE;
    return [{ scalabilityMode: mode, maxBitrate: source === 'screen' ? 2_500_000 : 1_700_000 }];
  }
  if (opts.simulcast === false) return undefined;
  const list = source === 'screen' ? SCREEN_ENCODINGS : CAMERA_ENCODINGS;
  // H.264 in Chromium has no temporal layers to offer.
  const temporal = codec === 'VP8' && supportsMode('video/VP8', SIMULCAST_TEMPORAL_MODE);
  return list.map((e) => (temporal ? { ...e, scalabilityMode: SIMULCAST_TEMPORAL_MODE } : { ...e }));
}

/**
 * Whether the browser says it can encode `mime` with `mode`. A browser that
 * does not list scalability modes at all is trusted to accept them.
 * @param {string} mime
 * @param {string} mode
 */
function supportsMode(mime, mode) {
  const caps = globalThis.RTCRtpSender?.getCapabilities?.('video');
  if (!caps) return false;
  const codecs = caps.codecs.filter((c) => c.mimeType.toLowerCase() === mime.toLowerCase());
  /** @type {string[] | undefined} */
  const modes = codecs.flatMap((c) => /** @type {any} */ (c).scalabilityModes ?? []);
  if (!codecs.some((c) => 'scalabilityModes' in c)) return codecs.length > 0;
  return modes.includes(mode);
}

/**
 * Adds a sending transceiver for a video source with the encodings and the
 * codec chosen, falling back to the browser's defaults when it refuses them
 * (an older browser without scalability modes, say).
 * @param {RTCPeerConnection} pc
 * @param {MediaStreamTrack | 'audio' | 'video'} trackOrKind
 * @param {RTCRtpTransceiverInit} init
 * @param {'microphone'|'camera'|'screen'} source
 * @param {PublishOptions | null} opts null: plain (P2P rooms)
 */
export function addSendTransceiver(pc, trackOrKind, init, source, opts) {
  const encodings = opts ? sendEncodings(source, opts) : undefined;
  let tr;
  if (encodings) {
    try {
      tr = pc.addTransceiver(trackOrKind, { ...init, sendEncodings: encodings });
    } catch {
      const plain = encodings.map(({ scalabilityMode, ...e }) => e);
      try {
        tr = pc.addTransceiver(trackOrKind, { ...init, sendEncodings: encodings.length > 1 ? plain : undefined });
      } catch {
        tr = pc.addTransceiver(trackOrKind, init);
      }
    }
  } else {
    tr = pc.addTransceiver(trackOrKind, init);
  }
  if (opts && source !== 'microphone') preferCodec(tr, opts.codec ?? 'VP8');
  return tr;
}

/**
 * Puts `codec` first in the transceiver's codec list; the rest stay as
 * fallbacks, so a server without it still negotiates. VP9 profile 0 goes
 * before the other VP9 profiles (what servers decode and forward most).
 * @param {RTCRtpTransceiver} tr
 * @param {VideoCodec} codec
 */
export function preferCodec(tr, codec) {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.('video');
  if (!caps || typeof tr.setCodecPreferences !== 'function') return;
  const mime = `video/${codec}`.toLowerCase();
  const rank = (/** @type {RTCRtpCodec} */ c) => {
    if (c.mimeType.toLowerCase() !== mime) return 2;
    return /profile-id=[^0]/.test(c.sdpFmtpLine ?? '') ? 1 : 0;
  };
  const sorted = [...caps.codecs].sort((a, b) => rank(a) - rank(b));
  try {
    tr.setCodecPreferences(sorted);
  } catch {
    // Not settable on this browser: its own order stands.
  }
}

/** Each sender's SVC mode and scale as published, before any dynacast change. */
const svcAsPublished = new WeakMap();

/**
 * The scalability mode and scale that encode only the lowest `keep` spatial
 * layers of `mode` (e.g. `L3T3_KEY`) published at `scale`: fewer spatial
 * layers, the input scaled down so each layer kept has its size as
 * published. Null when `mode` has no spatial layers to drop.
 * @param {string} mode
 * @param {number} scale
 * @param {number} keep
 * @returns {{ mode: string, scale: number } | null}
 */
export function svcModeFor(mode, scale, keep) {
  const m = /^L(\d)T(\d)(.*)$/.exec(mode ?? '');
  if (!m) return null;
  const spatial = Number(m[1]);
  const k = Math.max(1, Math.min(spatial, Math.floor(keep)));
  // One spatial layer has no key-frame dependency structure to name.
  const suffix = k === 1 ? '' : m[3];
  return { mode: `L${k}T${m[2]}${suffix}`, scale: scale * 2 ** (spatial - k) };
}

/**
 * Applies a `publisher-encodings` message to a sender: each encoding named
 * (by rid, or the only one when none is named) is turned on or off, and an
 * SVC encoding keeps as many spatial layers as `spatialLayers` says (all
 * when absent). Resolves to whether anything changed.
 * @param {RTCRtpSender} sender
 * @param {{ rid?: string, active: boolean, spatialLayers?: number }[]} wanted
 */
export async function applyEncodings(sender, wanted) {
  const params = sender.getParameters();
  if (!params.encodings?.length) return false;
  let changed = false;
  for (const w of wanted) {
    if (typeof w?.active !== 'boolean') continue;
    const enc = w.rid ? params.encodings.find((e) => e.rid === w.rid) : params.encodings.length === 1 ? params.encodings[0] : undefined;
    if (!enc) continue;
    if (enc.active !== w.active) {
      enc.active = w.active;
      changed = true;
    }
    if (params.encodings.length === 1 && enc.scalabilityMode) {
      if (!svcAsPublished.has(sender)) svcAsPublished.set(sender, { mode: enc.scalabilityMode, scale: enc.scaleResolutionDownBy ?? 1 });
      const published = svcAsPublished.get(sender);
      const keep = Number.isInteger(w.spatialLayers) && /** @type {number} */ (w.spatialLayers) > 0 ? /** @type {number} */ (w.spatialLayers) : Infinity;
      const target = svcModeFor(published.mode, published.scale, keep);
      if (target && (enc.scalabilityMode !== target.mode || (enc.scaleResolutionDownBy ?? 1) !== target.scale)) {
        enc.scalabilityMode = target.mode;
        enc.scaleResolutionDownBy = target.scale;
        changed = true;
      }
    }
  }
  if (changed) await sender.setParameters(params);
  return changed;
}
