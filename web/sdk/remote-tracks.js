// Remote tracks: who sent each one and what it carries (camera or screen,
// microphone or screen audio). In SFU rooms a forwarded track's stream id is
// the publisher's participant id; in P2P rooms it is the peer of the
// connection. The source comes from the publisher's `media-state.tracks`
// (by track id) or, failing that, from transceiver order: the first audio
// and video of a mesh connection are the microphone and camera.

/**
 * @typedef {import('./client.js').TrackSource} TrackSource
 * @typedef {{ participantId: string, track: MediaStreamTrack, source: TrackSource, transceiver: RTCRtpTransceiver }} RemoteTrack
 */

export class RemoteTracks {
  /** @type {Map<RTCRtpTransceiver, RemoteTrack>} */
  #byTransceiver = new Map();
  #client;
  #gone;

  /**
   * @param {import('./client.js').RoomClient} client
   * @param {(participantId: string, track: MediaStreamTrack) => void} [gone] a track ended or went away
   */
  constructor(client, gone) {
    this.#client = client;
    this.#gone = gone;
  }

  /**
   * @param {import('./client.js').PeerEntry} entry
   * @param {RTCTrackEvent} ev
   */
  onTrack(entry, ev) {
    const { track, transceiver } = ev;
    const stream = ev.streams[0];
    const participantId = entry.peerId ?? stream?.id;
    if (!participantId || participantId === this.#client.id) return;
    const old = this.#byTransceiver.get(transceiver);
    if (old) this.#remove(transceiver);
    const source = this.#classify(participantId, track, transceiver, entry);
    /** @type {RemoteTrack} */
    const rt = { participantId, track, source, transceiver };
    this.#byTransceiver.set(transceiver, rt);
    const onGone = () => {
      if (this.#byTransceiver.get(transceiver) === rt) this.#remove(transceiver);
    };
    stream?.addEventListener('removetrack', (e) => {
      if (e.track === track) onGone();
    });
    track.addEventListener('ended', onGone);
    this.#client.emit('track-added', { participantId, track, source });
  }

  /**
   * The participant a remote track comes from, if it is one.
   * @param {MediaStreamTrack} track
   */
  ownerOf(track) {
    for (const rt of this.#byTransceiver.values()) if (rt.track === track) return rt.participantId;
    return null;
  }

  /** @param {string} participantId */
  of(participantId) {
    return [...this.#byTransceiver.values()].filter((r) => r.participantId === participantId);
  }

  /** Re-derives sources after a `media-state` named the tracks. */
  /** @param {string} participantId */
  reclassify(participantId) {
    const tracks = this.#client.participants.get(participantId)?.media?.tracks ?? [];
    for (const rt of this.of(participantId)) {
      const named = tracks.find((t) => t.id === rt.track.id);
      if (named && named.source !== rt.source) {
        this.#client.emit('track-removed', { participantId, track: rt.track, source: rt.source });
        rt.source = named.source;
        this.#client.emit('track-added', { participantId, track: rt.track, source: rt.source });
      }
    }
  }

  /** @param {string} participantId */
  dropParticipant(participantId) {
    for (const [tr, rt] of [...this.#byTransceiver]) if (rt.participantId === participantId) this.#remove(tr);
  }

  /**
   * Forgets the tracks of a closed connection (one to a node the client
   * moved away from): their copies arrive on the new connection.
   * @param {RTCRtpTransceiver[]} transceivers
   */
  dropTransceivers(transceivers) {
    for (const tr of transceivers) this.#remove(tr);
  }

  /** @param {RTCRtpTransceiver} tr */
  #remove(tr) {
    const rt = this.#byTransceiver.get(tr);
    if (!rt) return;
    this.#byTransceiver.delete(tr);
    this.#gone?.(rt.participantId, rt.track);
    this.#client.emit('track-removed', { participantId: rt.participantId, track: rt.track, source: rt.source });
  }

  /**
   * @param {string} participantId
   * @param {MediaStreamTrack} track
   * @param {RTCRtpTransceiver} transceiver
   * @param {import('./client.js').PeerEntry} entry
   * @returns {TrackSource}
   */
  #classify(participantId, track, transceiver, entry) {
    const named = this.#client.participants.get(participantId)?.media?.tracks?.find((t) => t.id === track.id);
    if (named) return named.source;
    const audio = track.kind === 'audio';
    if (entry.peerId !== null) {
      const firstOfKind = entry.pc.getTransceivers().find((t) => t.mid != null && t.receiver.track.kind === track.kind);
      if (firstOfKind === transceiver) return audio ? 'microphone' : 'camera';
      return audio ? 'screen-audio' : 'screen';
    }
    const main = audio ? 'microphone' : 'camera';
    const taken = this.of(participantId).some((r) => r.source === main && r.track.readyState === 'live');
    if (!taken) return main;
    return audio ? 'screen-audio' : 'screen';
  }
}
