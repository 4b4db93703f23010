// RoomClient: the one API for SFU and P2P rooms. It joins a room over the
// signaling socket, keeps one peer connection to the server (SFU) or one per
// other participant (P2P mesh), publishes the local sources, reports remote
// tracks, and re-joins with `resume` after the socket drops.

import { Emitter } from './emitter.js';
import { SignalingSocket } from './signaling.js';
import { PeerLink } from './peer.js';
import { LocalMedia } from './local-media.js';
import { SdkError } from './errors.js';
import { createMeshSlots, adoptMeshSlots, syncSenders, renewUnnegotiated, SOURCES } from './senders.js';
import { RemoteTracks } from './remote-tracks.js';
import { TrackViews } from './track-views.js';
import { applyEncodings } from './encodings.js';
import { onNetworkChange } from './network.js';

/**
 * @typedef {import('./local-media.js').Source} Source
 * @typedef {'microphone'|'camera'|'screen'|'screen-audio'} TrackSource
 * @typedef {{ microphone: boolean, camera: boolean, screen: boolean, tracks?: { id: string, source: TrackSource }[] }} MediaState
 * @typedef {{ id: string, name: string, media: MediaState, permissions?: { publish: boolean, subscribe: boolean } }} Participant
 * @typedef {{ room: string, token?: string, name?: string, mode?: 'p2p'|'sfu' }} JoinOptions
 * @typedef {{ id: string, room: string, mode: 'p2p'|'sfu', name: string, participants: Participant[], permissions: { publish: boolean, subscribe: boolean }, resumed: boolean, node?: string }} JoinedInfo
 * @typedef {{
 *   'signaling-state': { state: import('./signaling.js').SocketState },
 *   joined: JoinedInfo,
 *   left: { room: string | null },
 *   'participant-joined': { participant: Participant },
 *   'participant-left': { id: string, participant: Participant | undefined },
 *   'media-state': { participantId: string, media: MediaState },
 *   'local-media': { microphone: boolean, camera: boolean, screen: boolean },
 *   'local-track': { source: Source, track: MediaStreamTrack | null },
 *   'track-added': { participantId: string, track: MediaStreamTrack, source: TrackSource },
 *   'track-removed': { participantId: string, track: MediaStreamTrack, source: TrackSource },
 *   'connection-state': { peerId: string | null, state: RTCPeerConnectionState },
 *   'connection-recovery': { peerId: string | null, action: 'new-connection' | 'renew-transceivers' | 'renegotiate' | 'restart-ice' | 'rejoin' },
 *   'node-changed': { node: string | null, url: string, reason: 'redirect' | 'move' | 'reconnect' },
 *   'active-speakers': { speakers: Speaker[] },
 *   'publisher-encodings': { source: Source | null, mid: string | null, encodings: { rid?: string, active: boolean, spatialLayers?: number }[] },
 *   'stream-state': { participantId: string, trackId: string, track: MediaStreamTrack | null, paused: boolean, reason: string | null },
 *   error: SdkError,
 * }} ClientEvents
 * @typedef {{ key: string, peerId: string | null, link: PeerLink, sig?: SignalingSocket | null, encodingsDone?: Promise<unknown> } & import('./senders.js').SenderSet} PeerEntry
 * @typedef {{ id: string, level: number }} Speaker
 * @typedef {import('./track-views.js').Quality} Quality
 */

/** The `/ws` address of the server that served this page. */
export function defaultUrl() {
  const l = globalThis.location;
  return l ? `${l.protocol === 'https:' ? 'wss' : 'ws'}://${l.host}/ws` : 'ws://127.0.0.1/ws';
}

/** @extends {Emitter<ClientEvents>} */
export class RoomClient extends Emitter {
  /** @type {string | null} our participant id */
  id = null;
  /** @type {string | null} */
  room = null;
  /** @type {'p2p'|'sfu'|null} */
  mode = null;
  /** @type {Map<string, Participant>} everyone else in the room */
  participants = new Map();
  permissions = { publish: true, subscribe: true };
  /** @type {SignalingSocket | null} */
  signaling = null;
  local;
  #opts;
  /** @type {JoinOptions | null} */
  #joinOpts = null;
  #resumeToken = '';
  /** @type {RTCIceServer[]} */
  #iceServers = [];
  /** @type {Map<string, PeerEntry>} */
  #peers = new Map();
  /** @type {{ resolve: (j: JoinedInfo) => void, reject: (e: SdkError) => void } | null} */
  #pendingJoin = null;
  /** @type {(() => void) | null} */
  #leftWaiter = null;
  #remote;
  #streams;
  #views;
  /** @type {Speaker[]} who speaks in the room, loudest first (SFU rooms, from the server) */
  activeSpeakers = [];
  /** @type {Map<string, Map<string, string>>} remote tracks the server stopped sending, per participant: track id -> reason */
  #serverPaused = new Map();
  /** @type {ReturnType<typeof setInterval> | null} */
  #ping = null;
  /** A re-join is under way (see #rejoin). */
  #rejoining = false;
  /** The join in progress follows a cluster's `redirect` or `move`: it asks for no other. */
  #followed = false;
  /** @type {SignalingSocket | null} the socket to the node we are moving away from */
  #movingFrom = null;
  /** @type {PeerEntry | null} the connection to that node, kept until the new one is up */
  #retiring = null;
  /** @type {(() => void) | null} stops watching for network changes (see network.js) */
  #offNetwork = null;

  /**
   * @param {{
   *   url?: string | string[],
   *   WebSocket?: typeof WebSocket,
   *   RTCPeerConnection?: typeof RTCPeerConnection,
   *   MediaStream?: typeof MediaStream,
   *   mediaDevices?: MediaDevices,
   *   backoff?: import('./signaling.js').Backoff,
   *   offerRetryMs?: number,
   *   recovery?: { checkMs?: number, settleMs?: number, connectMs?: number },
   *   publish?: import('./encodings.js').PublishOptions,
   *   trackSettingsDebounceMs?: number,
   * }} [opts] url: the server's `/ws` (default: the page's server), or the
   *   nodes of a cluster, tried in turn when one cannot be reached; the
   *   constructors are injectable for unit tests only; offerRetryMs:
   *   when to re-send an unanswered offer (default 10000); recovery: when to
   *   renegotiate a track that was never negotiated (settleMs, default 3000)
   *   and restart ICE on a connection that is not up (connectMs, default 6000);
   *   publish: how video goes out in SFU rooms (simulcast, the codec, SVC:
   *   see docs/sdk.md, Adaptive media); trackSettingsDebounceMs:
   *   how long view changes gather before `track-settings` goes out (150)
   */
  constructor(opts = {}) {
    super();
    this.#opts = opts;
    this.local = new LocalMedia(opts.mediaDevices ?? globalThis.navigator?.mediaDevices);
    const MS = opts.MediaStream ?? globalThis.MediaStream;
    this.#streams = { camera: new MS(), screen: new MS() };
    this.#remote = new RemoteTracks(this, (participantId, track) => this.#views.gone(participantId, track.id));
    this.#views = new TrackViews((m) => this.signaling?.send(m), { debounceMs: opts.trackSettingsDebounceMs });
  }

  /**
   * Joins a room; resolves with the `joined` details, rejects with an
   * SdkError carrying the server's code (`room_full`, `token_invalid`, ...).
   * @param {JoinOptions} options
   * @returns {Promise<JoinedInfo>}
   */
  join(options) {
    if (this.room || this.#pendingJoin) return Promise.reject(new SdkError('already_in_room', 'already in a room: leave first'));
    this.#joinOpts = { ...options };
    this.#offNetwork ??= onNetworkChange(() => this.#restartIceAll());
    const joined = new Promise((resolve, reject) => (this.#pendingJoin = { resolve, reject }));
    if (!this.signaling || this.signaling.state === 'closed') this.#openSignaling();
    else if (this.signaling.state === 'open') this.#sendJoin();
    return joined;
  }

  /** Leaves the room: closes every peer connection, stops every local track, tells the server. */
  async leave() {
    const sig = this.signaling;
    const room = this.room;
    this.#joinOpts = null;
    this.#rejoining = false;
    this.#offNetwork?.();
    this.#offNetwork = null;
    this.#closePeers();
    this.local.stopAll();
    this.#pendingJoin?.reject(new SdkError('left', 'left before the join completed'));
    this.#pendingJoin = null;
    if (sig && sig.state === 'open' && room) {
      const left = new Promise((resolve) => {
        this.#leftWaiter = () => resolve(undefined);
        setTimeout(resolve, 1000);
      });
      sig.send({ type: 'leave' });
      await left;
    }
    this.#leftWaiter = null;
    sig?.close();
    this.signaling = null;
    if (this.#ping) clearInterval(this.#ping);
    this.#ping = null;
    for (const id of [...this.participants.keys()]) this.#removeParticipant(id);
    this.#views.close();
    this.activeSpeakers = [];
    this.room = null;
    this.id = null;
    this.mode = null;
    this.#resumeToken = '';
    this.emit('local-media', this.localState());
    this.emit('left', { room });
  }

  /** @param {boolean} on */
  async setMicrophone(on) {
    if (on) this.#mayPublish('microphone');
    const lm = this.local;
    if (on && !lm.tracks.microphone) await this.#startSource('microphone');
    lm.microphoneMuted = !on;
    const t = lm.tracks.microphone;
    if (t) t.enabled = on;
    await this.#publishChange();
  }

  /** @param {boolean} on */
  async setCamera(on) {
    if (on) this.#mayPublish('camera');
    if (on && !this.local.isOn('camera')) await this.#startSource('camera');
    if (!on && this.local.tracks.camera) {
      this.local.stop('camera');
      this.emit('local-track', { source: 'camera', track: null });
    }
    await this.#publishChange();
  }

  /** @param {boolean} on */
  async setScreenShare(on) {
    if (on) this.#mayPublish('screen');
    if (on && !this.local.isOn('screen')) {
      const track = await this.#startSource('screen');
      // The browser's own "Stop sharing" button ends the track.
      track.addEventListener('ended', () => {
        if (this.local.tracks.screen === track) this.setScreenShare(false).catch(() => {});
      });
    }
    if (!on && this.local.tracks.screen) {
      this.local.stop('screen');
      this.emit('local-track', { source: 'screen', track: null });
    }
    await this.#publishChange();
  }

  /**
   * Switches the microphone or camera to another device (ids from `local.listDevices()`).
   * @param {'microphone'|'camera'} source
   * @param {string} deviceId
   */
  async setDevice(source, deviceId) {
    this.local.devices[source] = deviceId;
    if (!this.local.tracks[source]) return;
    await this.#startSource(source);
    const t = this.local.tracks.microphone;
    if (source === 'microphone' && t) t.enabled = !this.local.microphoneMuted;
    await this.#publishChange();
  }

  /**
   * In a room without the publish permission no device is asked for: the
   * track could go nowhere. Throws (and emits) `permission_denied`.
   * @param {Source} source
   */
  #mayPublish(source) {
    if (!this.room || this.permissions.publish) return;
    const err = new SdkError('permission_denied', `This participant may only watch: its token has no publish grant (${source}).`, { source });
    this.emit('error', err);
    throw err;
  }

  /** What the local sources are doing now. */
  localState() {
    return { microphone: this.local.isOn('microphone'), camera: this.local.isOn('camera'), screen: this.local.isOn('screen') };
  }

  /** The live peer connections: one to the server in SFU rooms, one per peer in P2P rooms. */
  peerConnections() {
    return [...this.#peers.values()].map((p) => p.link.pc);
  }

  /** Connection state per peer (`null` key: the server in SFU rooms). */
  connectionStates() {
    return new Map([...this.#peers.values()].map((p) => [p.peerId, p.link.pc.connectionState]));
  }

  /** getStats() of every peer connection, with the peer it goes to. */
  async getStats() {
    return Promise.all([...this.#peers.values()].map(async (p) => ({ peerId: p.peerId, report: await p.link.pc.getStats() })));
  }

  /** Remote tracks of a participant, by source. */
  /** @param {string} participantId */
  tracksOf(participantId) {
    return this.#remote.of(participantId);
  }

  // ---- adaptive media (SFU rooms) ----

  /**
   * Tells the server that `element` shows a remote track (it does not set
   * `srcObject`: the page does). From then on the server sends the smallest
   * layer that covers the element's rendered size, and no video while no
   * element showing the track is visible (hidden page, scrolled out of
   * view, zero size, removed). Returns a function that detaches it.
   * @param {MediaStreamTrack} track a remote track (from `track-added`)
   * @param {Element} element usually the `<video>` that plays it
   * @returns {() => void}
   */
  attach(track, element) {
    const owner = this.#remote.ownerOf(track);
    if (!owner) return () => {};
    return this.#views.attach(owner, track.id, element);
  }

  /**
   * The most a subscriber wants of a remote track, whatever its size
   * (`null`: no cap).
   * @param {string} participantId
   * @param {MediaStreamTrack | string} track the track or its id
   * @param {Quality | null} quality
   */
  setTrackQuality(participantId, track, quality) {
    this.#views.choose(participantId, trackId(track), { quality });
  }

  /**
   * The largest picture wanted of a remote track, in pixels (`null`: no cap).
   * @param {string} participantId
   * @param {MediaStreamTrack | string} track
   * @param {{ width?: number, height?: number } | null} size
   */
  setTrackMaxSize(participantId, track, size) {
    this.#views.choose(participantId, trackId(track), { maxWidth: size?.width ?? null, maxHeight: size?.height ?? null });
  }

  /**
   * Stops receiving a remote track until `resumeTrack` (video or audio).
   * @param {string} participantId
   * @param {MediaStreamTrack | string} track
   */
  pauseTrack(participantId, track) {
    this.#views.choose(participantId, trackId(track), { paused: true });
  }

  /** @param {string} participantId @param {MediaStreamTrack | string} track */
  resumeTrack(participantId, track) {
    this.#views.choose(participantId, trackId(track), { paused: false });
  }

  /**
   * What the server was (or will be) told of a remote track: `visible`,
   * rendered `width` and `height` in device pixels, and the choices made;
   * null while the server's default (the best layer) stands.
   * @param {string} participantId
   * @param {MediaStreamTrack | string} track
   */
  trackSettings(participantId, track) {
    return this.#views.current(participantId, trackId(track));
  }

  // ---- signaling ----

  /** @param {string | string[]} [url] */
  #openSignaling(url) {
    const sig = new SignalingSocket(url ?? this.#opts.url ?? defaultUrl(), { WebSocket: this.#opts.WebSocket, backoff: this.#opts.backoff });
    this.signaling = sig;
    sig.on('state', ({ state }) => {
      if (sig === this.signaling) this.emit('signaling-state', { state });
    });
    sig.on('open', ({ reconnected }) => {
      if (sig !== this.signaling || !this.#joinOpts) return;
      if (reconnected && this.room && !this.#followed) this.#reconnectedTo = sig.url;
      this.#sendJoin();
    });
    sig.on('message', (m) => {
      if (sig === this.signaling) this.#onMessage(m);
      else this.#onOldNodeMessage(sig, m);
    });
    sig.connect();
    if (!this.#ping) {
      // Keeps idle sockets alive through proxies that drop quiet connections.
      this.#ping = setInterval(() => this.signaling?.send({ type: 'ping' }), 20000);
      /** @type {any} */ (this.#ping).unref?.(); // Node (unit tests): do not hold the process open
    }
  }

  #sendJoin() {
    const o = this.#joinOpts;
    if (!o) return;
    /** @type {Record<string, any>} */
    const msg = { type: 'join', room: o.room };
    if (o.token) msg.token = o.token;
    if (o.name) msg.name = o.name;
    if (o.mode) msg.mode = o.mode;
    if (this.#resumeToken && this.room === o.room) msg.resume = this.#resumeToken;
    // In a cluster the server may send us to the node serving the room;
    // a join that already followed such a message asks for no other.
    msg.redirect = !this.#followed;
    this.signaling?.send(msg);
  }

  /** The URL a dropped socket reconnected to (for `node-changed`). */
  #reconnectedTo = '';

  /** @param {Record<string, any>} m */
  #onMessage(m) {
    switch (m.type) {
      case 'joined':
        return this.#onJoined(m);
      case 'error':
        return this.#onError(m);
      case 'participant-joined':
        return this.#addParticipant(m.participant, false);
      case 'participant-left':
        return this.#removeParticipant(m.id);
      case 'media-state': {
        const p = this.participants.get(m.from);
        if (!p) return;
        p.media = m.media;
        this.#remote.reclassify(m.from);
        this.emit('media-state', { participantId: m.from, media: m.media });
        return;
      }
      case 'left':
        if (this.#rejoining) {
          this.#rejoining = false;
          this.#resumeToken = '';
          this.#sendJoin();
          return;
        }
        this.#leftWaiter?.();
        return;
      case 'offer':
      case 'answer':
      case 'ice-candidate':
        return this.#onPeerSignal(m);
      case 'redirect':
        return this.#onRedirect(m);
      case 'move':
        return this.#onMove(m);
      case 'active-speakers':
        return this.#onActiveSpeakers(m);
      case 'publisher-encodings':
        return this.#onPublisherEncodings(m);
      case 'stream-state':
        return this.#onStreamState(m);
      default:
    }
  }

  /** @param {Record<string, any>} m */
  #onJoined(m) {
    const resumed = m.resumed === true && m.clientId === this.id;
    if (!resumed && this.id) {
      // Our place was gone when we came back: start over as a newcomer.
      this.#closePeers();
      for (const id of [...this.participants.keys()]) this.#removeParticipant(id);
    }
    this.id = m.clientId;
    this.room = m.room;
    this.mode = m.mode;
    this.permissions = m.permissions ?? this.permissions;
    if (!this.permissions.publish) this.#releaseLocal();
    this.#iceServers = m.iceServers ?? [];
    this.#resumeToken = m.resumeToken ?? '';
    /** @type {Participant[]} */
    const list = m.participants ?? [];
    /** @type {JoinedInfo} */
    const info = { id: m.clientId, room: m.room, mode: m.mode, name: m.name, participants: list, permissions: this.permissions, resumed };
    if (typeof m.node === 'string') info.node = m.node;
    const reason = this.#movingFrom ? 'move' : this.#followed ? 'redirect' : this.#reconnectedTo ? 'reconnect' : null;
    this.#followed = false;
    this.#reconnectedTo = '';
    if (reason && (resumed ? m.moved === true : true)) this.emit('node-changed', { node: info.node ?? null, url: this.signaling?.url ?? '', reason });
    if (resumed && m.moved === true) this.#serverMoved();
    if (resumed) {
      const present = new Set(list.map((p) => p.id));
      for (const id of [...this.participants.keys()]) if (!present.has(id)) this.#removeParticipant(id);
      this.emit('joined', info);
      for (const p of list) {
        const known = this.participants.get(p.id);
        if (!known) this.#addParticipant(p, true);
        else if (JSON.stringify(known.media) !== JSON.stringify(p.media)) this.#onMessage({ type: 'media-state', from: p.id, media: p.media });
      }
    } else {
      // The server waits only briefly for our first offer before offering
      // itself (and a crossing of the two costs a rollback), so the
      // connection and its offer are under way before the page handles
      // the events below.
      const sfu = this.mode === 'sfu' ? this.#createPeer(null, true, false) : null;
      this.emit('joined', info);
      for (const p of list) this.#addParticipant(p, true);
      if (sfu) this.emit('connection-state', { peerId: null, state: sfu.link.pc.connectionState });
    }
    this.#sendMediaState();
    // A resumed place keeps its forwarded tracks: the server hears again how they are shown.
    if (resumed) this.#views.resendAll();
    this.#pendingJoin?.resolve(info);
    this.#pendingJoin = null;
  }

  /** @param {Record<string, any>} m */
  #onActiveSpeakers(m) {
    if (!Array.isArray(m.speakers)) return;
    /** @type {Speaker[]} */
    const speakers = m.speakers
      .filter((/** @type {any} */ s) => s && typeof s.id === 'string')
      .map((/** @type {any} */ s) => ({ id: s.id, level: Number(s.level) || 0 }));
    this.activeSpeakers = speakers;
    this.emit('active-speakers', { speakers });
  }

  /**
   * The server stopped sending a remote video (its downlink cannot carry
   * even the lowest layer) or sends it again.
   * @param {Record<string, any>} m
   */
  #onStreamState(m) {
    if (typeof m.participant !== 'string' || typeof m.track !== 'string') return;
    const paused = m.paused === true;
    const reason = paused ? (typeof m.reason === 'string' ? m.reason : 'bandwidth') : null;
    const mine = this.#serverPaused.get(m.participant) ?? new Map();
    if (paused) mine.set(m.track, /** @type {string} */ (reason));
    else mine.delete(m.track);
    if (mine.size) this.#serverPaused.set(m.participant, mine);
    else this.#serverPaused.delete(m.participant);
    const track = this.#remote.of(m.participant).find((r) => r.track.id === m.track)?.track ?? null;
    this.emit('stream-state', { participantId: m.participant, trackId: m.track, track, paused, reason });
  }

  /**
   * Why the server does not send a remote track now (`'bandwidth'`), or
   * null while it does.
   * @param {string} participantId
   * @param {MediaStreamTrack | string} track
   */
  serverPaused(participantId, track) {
    return this.#serverPaused.get(participantId)?.get(trackId(track)) ?? null;
  }

  /**
   * Dynacast: the server says which encodings of one of our tracks anyone
   * receives; the others are turned off at the encoder (no CPU, no uplink)
   * until it asks for them again.
   * @param {Record<string, any>} m
   */
  #onPublisherEncodings(m) {
    const entry = this.#peers.get('server');
    if (!entry || !Array.isArray(m.encodings)) return;
    const tr = entry.link.pc.getTransceivers().find((t) => m.mid != null && t.mid === m.mid && t.currentDirection !== 'stopped')
      ?? SOURCES.map((s) => entry.slots[s]).find((t) => t && t.sender.track?.id === m.track);
    if (!tr) return;
    const source = SOURCES.find((s) => entry.slots[s] === tr) ?? null;
    /** @type {{ rid?: string, active: boolean }[]} */
    const encodings = m.encodings.filter((/** @type {any} */ e) => e && typeof e.active === 'boolean');
    // getParameters/setParameters pairs must not interleave on one sender.
    entry.encodingsDone = (entry.encodingsDone ?? Promise.resolve())
      .then(() => applyEncodings(tr.sender, encodings))
      .then(() => this.emit('publisher-encodings', { source, mid: tr.mid, encodings }))
      .catch((e) => this.emit('error', new SdkError('negotiation_failed', `could not apply the server's encodings: ${e?.message ?? e}`, { cause: e })));
  }

  /** @param {Record<string, any>} m */
  #onError(m) {
    // Our offer crossed the server's: we are the polite side and roll back
    // when the server's offer arrives, then offer again. Nothing to report.
    if (m.code === 'offer_ignored') return;
    const err = new SdkError(m.code, m.message, { request: m.request });
    if (m.request === 'join' && this.#pendingJoin) {
      this.#pendingJoin.reject(err);
      this.#pendingJoin = null;
      this.#joinOpts = null;
      this.signaling?.close();
      this.signaling = null;
    } else if (m.request === 'join' && this.#joinOpts) {
      // A re-join after a drop was refused (e.g. the token expired meanwhile).
      this.emit('error', err);
      this.leave().catch(() => {});
      return;
    }
    this.emit('error', err);
  }

  /**
   * @param {Participant} p
   * @param {boolean} weOffer in P2P, true when we are the newcomer
   */
  #addParticipant(p, weOffer) {
    if (!p || this.participants.has(p.id)) return;
    this.participants.set(p.id, { ...p, media: p.media ?? { microphone: false, camera: false, screen: false } });
    this.emit('participant-joined', { participant: p });
    if (this.mode === 'p2p') this.#createPeer(p.id, weOffer);
  }

  /** @param {string} id */
  #removeParticipant(id) {
    const p = this.participants.get(id);
    const entry = this.#peers.get(id);
    if (entry) {
      this.#peers.delete(id);
      entry.link.close();
    }
    this.#remote.dropParticipant(id);
    this.#serverPaused.delete(id);
    if (!p) return;
    this.participants.delete(id);
    this.emit('participant-left', { id, participant: p });
  }

  /** @param {Record<string, any>} m */
  #onPeerSignal(m) {
    const from = typeof m.from === 'string' ? m.from : null;
    if (this.mode === 'p2p' && !from) return;
    let entry = this.#peers.get(from ?? 'server');
    if (!entry && from && m.type === 'offer' && this.participants.has(from)) entry = this.#createPeer(from, false);
    if (!entry) return;
    const signal = m.type === 'ice-candidate' ? { type: m.type, candidate: m.candidate } : { type: m.type, sdp: m.sdp };
    entry.link.handle(signal);
  }

  // ---- peer connections ----

  /**
   * @param {string | null} peerId null: the server (SFU)
   * @param {boolean} offerer
   * @param {boolean} [announce] emit `connection-state: new` now
   */
  #createPeer(peerId, offerer, announce = true) {
    const PC = this.#opts.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    const pc = new PC({ iceServers: this.#iceServers });
    // The server is always impolite; between browsers, the smaller id is polite.
    const polite = peerId === null ? true : /** @type {string} */ (this.id) < peerId;
    const link = new PeerLink(pc, { polite });
    link.offerRetryMs = this.#opts.offerRetryMs ?? 10000;
    const key = peerId ?? 'server';
    /** @type {PeerEntry} */
    // The server's connection signals through the socket it was made on:
    // while moving between nodes, the old one still negotiates with the old node.
    const entry = {
      key, peerId, link, pc, slots: {}, sdpIds: {},
      mode: /** @type {'sfu'|'p2p'} */ (peerId === null ? 'sfu' : 'p2p'),
      sig: peerId === null ? this.signaling : null,
      publish: this.#opts.publish ?? {},
    };
    this.#peers.set(key, entry);
    if (entry.mode === 'sfu') {
      // A join can cross the server's first offer; recover from what that
      // leaves behind in the browser (see renewUnnegotiated), and from a
      // connection or a track that does not come up for any other reason.
      link.repair = () => {
        if (renewUnnegotiated(entry, this.#streams) > 0) this.emit('connection-recovery', { peerId, action: 'renew-transceivers' });
      };
      link.fresh = () => {
        // The old transceivers go with the old connection; the local tracks
        // are added to the new one once it has answered the server.
        entry.slots = {};
        entry.pc = new PC({ iceServers: this.#iceServers });
        this.emit('connection-recovery', { peerId, action: 'new-connection' });
        return entry.pc;
      };
      link.afterFresh = () => syncSenders(entry, this.#publishable(), this.#streams);
      link.on('recovery', ({ action }) => this.emit('connection-recovery', { peerId, action }));
      link.on('stuck', () => this.#rejoin());
      link.watch(this.#opts.recovery);
    }
    link.on('signal', (s) => (entry.sig ?? this.signaling)?.send(peerId ? { ...s, target: peerId } : s));
    link.on('connection-state', ({ state }) => {
      // Between browsers, a failed path gets one more try with fresh ICE
      // credentials (the renegotiation goes through perfect negotiation).
      if (state === 'failed' && entry.mode === 'p2p' && !link.closed) link.restartIce();
      this.emit('connection-state', { peerId, state });
    });
    link.on('track', (ev) => {
      this.#remote.onTrack(entry, ev);
      // A forwarded track (again, on a new connection): the server learns how it is shown.
      const owner = entry.mode === 'sfu' ? this.#remote.ownerOf(ev.track) : null;
      if (owner) this.#views.arrived(owner, ev.track.id);
    });
    link.on('error', ({ error }) =>
      this.emit('error', new SdkError('negotiation_failed', `negotiation with ${peerId ?? 'the server'} failed: ${/** @type {any} */ (error)?.message ?? error}`, { cause: error })),
    );
    if (announce) this.emit('connection-state', { peerId, state: 'new' });
    const tracks = this.#publishable();
    if (entry.mode === 'p2p') {
      if (offerer) createMeshSlots(entry, tracks, this.#streams.camera);
      link.beforeAnswer = async () => {
        adoptMeshSlots(entry, this.#streams.camera);
        await syncSenders(entry, this.#publishable(), this.#streams);
      };
    }
    // A P2P answerer attaches its tracks only once the offer is in (beforeAnswer),
    // so that the newcomer's offer is the only one.
    if (entry.mode === 'sfu' || offerer) {
      syncSenders(entry, tracks, this.#streams)
        // Offer at once rather than on the negotiationneeded task.
        .then(() => entry.mode === 'sfu' && Object.keys(entry.slots).length > 0 && link.negotiate())
        .catch((e) => this.emit('error', new SdkError('negotiation_failed', String(e), { cause: e })));
    }
    return entry;
  }

  /** Stops local sources started before a join that turned out view-only. */
  #releaseLocal() {
    const running = SOURCES.filter((s) => this.local.tracks[s]);
    if (running.length === 0) return;
    this.local.stopAll();
    for (const source of running) this.emit('local-track', { source, track: null });
    this.emit('local-media', this.localState());
  }

  /**
   * Last resort in an SFU room, when the connection to the server cannot be
   * repaired in place (the browser refuses every offer, or the server's
   * offer, or the connection never comes up through ICE restarts): leave
   * and join again as a newcomer. Local sources stay on; the others see
   * this participant leave and come back under a new id.
   */
  #rejoin() {
    if (this.#rejoining || !this.room || !this.#joinOpts || this.signaling?.state !== 'open') return;
    this.#rejoining = true;
    this.emit('connection-recovery', { peerId: null, action: 'rejoin' });
    this.signaling.send({ type: 'leave' });
  }

  /**
   * The network changed under us: every connection that was set up
   * restarts ICE (new credentials, candidates from the new network) on the
   * same peer connection, keeping its tracks.
   */
  #restartIceAll() {
    for (const entry of this.#peers.values()) {
      const pc = entry.link.pc;
      if (entry.link.closed || pc.remoteDescription === null || pc.connectionState === 'closed') continue;
      this.emit('connection-recovery', { peerId: entry.peerId, action: 'restart-ice' });
      entry.link.restartIce();
    }
  }

  #closePeers() {
    for (const entry of this.#peers.values()) entry.link.close();
    this.#peers.clear();
    this.#serverPaused.clear();
    this.#finishMove();
  }

  // ---- clusters ----

  /**
   * `redirect`: another node of the cluster serves this room; join there.
   * @param {Record<string, any>} m
   */
  #onRedirect(m) {
    if (typeof m.url !== 'string' || !this.#joinOpts || !this.signaling) return;
    this.#followed = true;
    this.signaling.switchTo(m.url);
  }

  /**
   * `move`: this node is shutting down. Join the new node with our resume
   * token on a second socket; the old socket and connection keep carrying
   * media until the new connection is up (see #serverMoved).
   * @param {Record<string, any>} m
   */
  #onMove(m) {
    const old = this.signaling;
    if (typeof m.url !== 'string' || !this.room || !old || this.#movingFrom) return;
    old.retire();
    this.#movingFrom = old;
    this.#followed = true;
    this.#openSignaling(m.url);
  }

  /**
   * A message on the socket to the node we are moving away from: only the
   * old connection's negotiation still goes through it.
   * @param {SignalingSocket} sig
   * @param {Record<string, any>} m
   */
  #onOldNodeMessage(sig, m) {
    const old = this.#retiring;
    if (!old || old.sig !== sig) return;
    if (m.type === 'offer' || m.type === 'answer') old.link.handle({ type: m.type, sdp: m.sdp });
    else if (m.type === 'ice-candidate') old.link.handle({ type: m.type, candidate: m.candidate });
  }

  /**
   * Our place now lives on another node: in an SFU room, a new connection
   * to that node's media plane. After a `move` the old connection keeps
   * flowing until the new one is connected (make before break); after a
   * lost socket it is gone anyway and is closed at once.
   */
  #serverMoved() {
    const from = this.#movingFrom;
    this.#movingFrom = null;
    if (this.mode !== 'sfu') {
      from?.close();
      return;
    }
    const old = this.#peers.get('server') ?? null;
    this.#peers.delete('server');
    const entry = this.#createPeer(null, true);
    if (!old) {
      from?.close();
      return;
    }
    if (!from) {
      this.#dropPeer(old);
      return;
    }
    this.#finishMove();
    this.#retiring = old;
    const done = () => {
      if (this.#retiring === old) this.#finishMove();
    };
    entry.link.on('connection-state', ({ state }) => {
      if (state === 'connected') done();
    });
    const timer = setTimeout(done, 15000);
    /** @type {any} */ (timer).unref?.();
  }

  /** Closes the connection and socket left on the node we moved from. */
  #finishMove() {
    const old = this.#retiring;
    this.#retiring = null;
    if (!old) return;
    const sig = old.sig;
    this.#dropPeer(old);
    // Closing with 1000 lets the old node free the place at once.
    if (sig && sig !== this.signaling) sig.close();
  }

  /** @param {PeerEntry} entry */
  #dropPeer(entry) {
    const transceivers = entry.link.pc.getTransceivers?.() ?? [];
    entry.link.close();
    this.#remote.dropTransceivers(transceivers);
  }

  /** Local tracks that may go out (none without the publish permission). */
  #publishable() {
    const t = this.local.tracks;
    if (!this.permissions.publish) return { microphone: null, camera: null, screen: null };
    return { microphone: t.microphone, camera: t.camera, screen: t.screen };
  }

  /** @param {Source} source */
  async #startSource(source) {
    try {
      const track = await this.local.start(source);
      this.emit('local-track', { source, track });
      return track;
    } catch (e) {
      const err = e instanceof SdkError ? e : new SdkError('media_failed', String(e), { source, cause: e });
      this.emit('error', err);
      throw err;
    }
  }

  async #publishChange() {
    for (const entry of this.#peers.values()) {
      if (entry.mode === 'p2p' && !entry.slots.camera && !entry.slots.microphone) continue; // not negotiated yet: beforeAnswer will attach
      await syncSenders(entry, this.#publishable(), this.#streams);
    }
    this.#sendMediaState();
    this.emit('local-media', this.localState());
  }

  #sendMediaState() {
    if (!this.room) return;
    const sfu = this.#peers.get('server');
    /** @type {{ id: string, source: TrackSource }[]} */
    const tracks = [];
    for (const source of SOURCES) {
      const t = this.local.tracks[source];
      if (!t || t.readyState === 'ended') continue;
      tracks.push({ id: sfu?.sdpIds[source] ?? t.id, source });
    }
    this.signaling?.send({ type: 'media-state', ...this.localState(), tracks });
  }
}

/** @param {MediaStreamTrack | string} track */
function trackId(track) {
  return typeof track === 'string' ? track : track.id;
}
