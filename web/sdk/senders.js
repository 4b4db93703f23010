// Which local track goes out on which transceiver of a peer connection.
//
// Every connection keeps one "slot" (a transceiver) per local source. The
// microphone and camera slots are reused across on/off with replaceTrack (no
// renegotiation); the screen slot is added when sharing starts and removed
// when it stops (a renegotiation each time, so the far side sees it go).
// In SFU rooms video goes out as simulcast or SVC (see encodings.js).

import { addSendTransceiver } from './encodings.js';

/** @typedef {import('./local-media.js').Source} Source */
/** @typedef {{ microphone?: RTCRtpTransceiver, camera?: RTCRtpTransceiver, screen?: RTCRtpTransceiver }} Slots */

/** @type {Source[]} */
export const SOURCES = ['microphone', 'camera', 'screen'];

/**
 * @typedef {object} SenderSet
 * @property {RTCPeerConnection} pc
 * @property {Slots} slots
 * @property {Partial<Record<Source, string>>} sdpIds track id announced in SDP per source
 * @property {'p2p'|'sfu'} mode
 * @property {import('./encodings.js').PublishOptions} [publish] how video goes out (SFU rooms)
 */

/**
 * Creates the microphone and camera slots of a P2P offerer. They are
 * sendrecv even without a track so that either side can start sending later
 * without a renegotiation.
 * @param {SenderSet} set
 * @param {Record<Source, MediaStreamTrack|null>} tracks
 * @param {MediaStream} stream
 */
export function createMeshSlots(set, tracks, stream) {
  set.slots.microphone = set.pc.addTransceiver(tracks.microphone ?? 'audio', { direction: 'sendrecv', streams: [stream] });
  set.slots.camera = set.pc.addTransceiver(tracks.camera ?? 'video', { direction: 'sendrecv', streams: [stream] });
  if (tracks.microphone) set.sdpIds.microphone = tracks.microphone.id;
  if (tracks.camera) set.sdpIds.camera = tracks.camera.id;
}

/**
 * P2P answerer: adopt the offer's first audio and video transceivers as
 * the microphone and camera slots, made sendrecv.
 * @param {SenderSet} set
 * @param {MediaStream} stream
 */
export function adoptMeshSlots(set, stream) {
  if (set.slots.microphone && set.slots.camera) return;
  for (const tr of set.pc.getTransceivers()) {
    if (tr.mid == null || isStopped(tr)) continue;
    const kind = tr.receiver.track.kind;
    const source = kind === 'audio' ? 'microphone' : 'camera';
    if (set.slots[source] || Object.values(set.slots).includes(tr)) continue;
    set.slots[source] = tr;
    tr.direction = 'sendrecv';
    tr.sender.setStreams?.(stream);
  }
}

/**
 * Makes every slot carry the current local track.
 * @param {SenderSet} set
 * @param {Record<Source, MediaStreamTrack|null>} tracks
 * @param {{ camera: MediaStream, screen: MediaStream }} streams
 */
export async function syncSenders(set, tracks, streams) {
  for (const source of SOURCES) {
    const track = tracks[source];
    const tr = set.slots[source];
    if (tr && !isStopped(tr)) {
      if (source === 'screen' && !track) {
        set.pc.removeTrack(tr.sender);
        delete set.slots.screen;
        delete set.sdpIds.screen;
        continue;
      }
      if (tr.sender.track !== track) {
        await tr.sender.replaceTrack(track);
        if (track && !set.sdpIds[source]) set.sdpIds[source] = track.id;
      }
    } else if (track) {
      const direction = set.mode === 'p2p' && source !== 'screen' ? 'sendrecv' : 'sendonly';
      const stream = source === 'screen' ? streams.screen : streams.camera;
      set.slots[source] = addSendTransceiver(set.pc, track, { direction, streams: [stream] }, source, sfuPublish(set));
      set.sdpIds[source] = track.id;
    }
  }
}

/**
 * Replaces every slot whose transceiver was never negotiated (no mid) by a
 * new transceiver with the same track, direction and stream, and stops the
 * old one. Chromium keeps the header-extension ids it gave a transceiver in
 * an offer that was then rolled back; when the server's offer, answered
 * meanwhile, numbered the extensions differently, every later offer fails
 * ("A BUNDLE group contains a codec collision for header extension id=N")
 * and the slot is never published. A new transceiver takes the ids the
 * connection has agreed on.
 * @param {SenderSet} set
 * @param {{ camera: MediaStream, screen: MediaStream }} streams
 * @returns {number} how many slots were renewed
 */
export function renewUnnegotiated(set, streams) {
  let renewed = 0;
  for (const source of SOURCES) {
    const tr = set.slots[source];
    if (!tr || tr.mid !== null || isStopped(tr)) continue;
    const track = tr.sender.track;
    const kind = source === 'microphone' ? 'audio' : 'video';
    const direction = tr.direction;
    tr.stop();
    const stream = source === 'screen' ? streams.screen : streams.camera;
    set.slots[source] = addSendTransceiver(set.pc, track ?? kind, { direction, streams: [stream] }, source, sfuPublish(set));
    renewed++;
  }
  return renewed;
}

/**
 * The publish options of an SFU connection; null between browsers, where
 * the receiving browser could not take simulcast.
 * @param {SenderSet} set
 */
function sfuPublish(set) {
  return set.mode === 'sfu' ? set.publish ?? {} : null;
}

/** @param {RTCRtpTransceiver} tr */
function isStopped(tr) {
  // `direction` is 'stopped' from stop() on; `currentDirection` once that is negotiated.
  return tr.direction === 'stopped' || tr.currentDirection === 'stopped' || /** @type {any} */ (tr).stopped === true;
}
