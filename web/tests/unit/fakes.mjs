// Stand-ins for WebSocket, RTCPeerConnection and MediaStream, injected into
// the SDK's constructor for unit tests of its state handling. They model
// only what the SDK relies on: socket open/close/message, and the
// offer/answer state machine with implicit rollback.

export class FakeWebSocket {
  /** @type {FakeWebSocket[]} every socket created, newest last */
  static all = [];
  readyState = 0;
  /** @type {any[]} parsed frames the client sent */
  sent = [];
  onopen = null;
  onclose = null;
  onerror = null;
  onmessage = null;

  constructor(url) {
    this.url = url;
    FakeWebSocket.all.push(this);
  }
  static get last() {
    return FakeWebSocket.all[FakeWebSocket.all.length - 1];
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  // ---- test side ----
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** @param {object} msg */
  receive(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
  sentOfType(type) {
    return this.sent.filter((m) => m.type === type);
  }
}

let nextId = 0;

export class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.id = `${kind}-${++nextId}`;
    this.enabled = true;
    this.readyState = 'live';
    this.listeners = {};
  }
  stop() {
    this.readyState = 'ended';
  }
  addEventListener(type, fn) {
    (this.listeners[type] ??= []).push(fn);
  }
  getSettings() {
    return {};
  }
}

export class FakeMediaStream {
  constructor() {
    this.id = `stream-${++nextId}`;
    this.tracks = [];
    this.listeners = {};
  }
  addEventListener(type, fn) {
    (this.listeners[type] ??= []).push(fn);
  }
  getTracks() {
    return this.tracks;
  }
}

class FakeTransceiver {
  constructor(kind, track, direction, mid) {
    this.mid = mid;
    this.direction = direction;
    this.currentDirection = null;
    this.receiver = { track: new FakeTrack(kind) };
    this.sender = {
      track,
      replaceTrack: async (t) => {
        this.sender.track = t;
      },
      setStreams: () => {},
    };
  }
  stop() {
    this.direction = 'stopped';
    if (this.mid !== null) this.currentDirection = 'stopped';
  }
}

export class FakePeerConnection {
  /** @type {FakePeerConnection[]} */
  static all = [];
  /** How many of the newest connection's next offers setLocalDescription refuses (as Chromium can after a rollback). */
  static refuseOffers = 0;
  signalingState = 'stable';
  connectionState = 'new';
  localDescription = null;
  currentLocalDescription = null;
  remoteDescription = null;
  currentRemoteDescription = null;
  /** @type {FakeTransceiver[]} */
  transceivers = [];
  candidates = [];
  onnegotiationneeded = null;
  onicecandidate = null;
  onconnectionstatechange = null;
  ontrack = null;
  #sdpVersion = 0;
  #mids = 0;

  constructor(config) {
    this.config = config;
    FakePeerConnection.all.push(this);
  }
  static get last() {
    return FakePeerConnection.all[FakePeerConnection.all.length - 1];
  }
  addTransceiver(trackOrKind, init) {
    const track = typeof trackOrKind === 'string' ? null : trackOrKind;
    const kind = track ? track.kind : trackOrKind;
    // Like a browser: no mid until an offer carries the transceiver.
    const tr = new FakeTransceiver(kind, track, init?.direction ?? 'sendrecv', null);
    this.transceivers.push(tr);
    this.#needNegotiation();
    return tr;
  }
  removeTrack(sender) {
    const tr = this.transceivers.find((t) => t.sender === sender);
    if (tr) {
      tr.sender.track = null;
      tr.direction = 'recvonly';
    }
    this.#needNegotiation();
  }
  getTransceivers() {
    return this.transceivers;
  }
  async createAnswer() {
    await tick();
    return { type: 'answer', sdp: `answer ${this.#sdpVersion + 1} m=${this.transceivers.length} a=setup:active` };
  }
  async setLocalDescription(desc) {
    await tick();
    if (desc?.type === 'rollback') {
      if (this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError: rollback in ' + this.signalingState);
      for (const t of this.pendingMids ?? []) t.mid = null;
      this.signalingState = 'stable';
      this.localDescription = this.currentLocalDescription;
      return;
    }
    const type = desc?.type ?? (this.signalingState === 'have-remote-offer' ? 'answer' : 'offer');
    if (type === 'answer' && desc?.sdp) {
      this.localDescription = { type, sdp: desc.sdp };
      this.currentLocalDescription = this.localDescription;
      this.currentRemoteDescription = this.remoteDescription;
      this.signalingState = 'stable';
      return;
    }
    if (type === 'offer' && this.signalingState !== 'stable') throw new Error('InvalidStateError: offer in ' + this.signalingState);
    if (type === 'answer' && this.signalingState !== 'have-remote-offer') throw new Error('InvalidStateError: answer in ' + this.signalingState);
    if (type === 'offer' && FakePeerConnection.refuseOffers > 0 && this === FakePeerConnection.last) {
      FakePeerConnection.refuseOffers--;
      throw new Error('OperationError: Failed to set local offer sdp: A BUNDLE group contains a codec collision for header extension id=5');
    }
    if (type === 'offer') {
      this.pendingMids = this.transceivers.filter((t) => t.mid === null);
      for (const t of this.pendingMids) t.mid = String(this.#mids++);
    }
    this.localDescription = { type, sdp: `${type} ${++this.#sdpVersion} m=${this.transceivers.length}${type === 'answer' ? ' a=setup:active' : ' a=setup:actpass'}` };
    this.signalingState = type === 'offer' ? 'have-local-offer' : 'stable';
    if (type === 'answer') {
      this.currentLocalDescription = this.localDescription;
      this.currentRemoteDescription = this.remoteDescription;
    }
  }
  async setRemoteDescription(desc) {
    await tick();
    if (/unusable/.test(desc.sdp)) throw new Error('OperationError: Failed to set remote offer sdp: RTP extension ID reassignment not supported');
    if (desc.type === 'offer') {
      if (this.signalingState === 'have-local-offer') {
        this.rolledBack = (this.rolledBack ?? 0) + 1; // implicit rollback: the offer's new mids go
        for (const t of this.pendingMids ?? []) t.mid = null;
        this.signalingState = 'stable';
      }
      if (this.signalingState !== 'stable') throw new Error('InvalidStateError: offer in ' + this.signalingState);
      this.signalingState = 'have-remote-offer';
      // The offer's m-lines: as many as it says, beyond the ones we have.
      const m = Number(/m=(\d+)/.exec(desc.sdp)?.[1] ?? 0);
      while (this.transceivers.filter((t) => t.mid !== null).length < m) {
        const kind = this.transceivers.length % 2 === 0 ? 'audio' : 'video';
        this.transceivers.push(new FakeTransceiver(kind, null, 'recvonly', String(this.#mids++)));
      }
    } else {
      if (this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError: answer in ' + this.signalingState);
      this.signalingState = 'stable';
      this.currentLocalDescription = this.localDescription;
      for (const t of this.transceivers) t.currentDirection = t.direction;
    }
    this.remoteDescription = desc;
    if (desc.type === 'answer') this.currentRemoteDescription = desc;
  }
  restartIce() {
    this.iceRestarts = (this.iceRestarts ?? 0) + 1;
    this.#needNegotiation();
  }
  async addIceCandidate(c) {
    if (!this.remoteDescription) throw new Error('InvalidStateError: no remote description');
    this.candidates.push(c);
  }
  async getStats() {
    return new Map();
  }
  close() {
    this.signalingState = 'closed';
    this.connectionState = 'closed';
  }
  // ---- test side ----
  setConnectionState(s) {
    this.connectionState = s;
    this.onconnectionstatechange?.();
  }
  #needNegotiation() {
    if (this.negotiationQueued) return;
    this.negotiationQueued = true;
    queueMicrotask(() => {
      this.negotiationQueued = false;
      if (this.signalingState === 'stable') this.onnegotiationneeded?.();
    });
  }
}

export class FakeMediaDevices {
  denied = new Set();
  async getUserMedia(c) {
    if (c.audio && this.denied.has('audio')) throw Object.assign(new Error('denied'), { name: 'NotAllowedError' });
    if (c.video && this.denied.has('video')) throw Object.assign(new Error('denied'), { name: 'NotAllowedError' });
    const tracks = [];
    if (c.audio) tracks.push(new FakeTrack('audio'));
    if (c.video) tracks.push(new FakeTrack('video'));
    return { getAudioTracks: () => tracks.filter((t) => t.kind === 'audio'), getVideoTracks: () => tracks.filter((t) => t.kind === 'video') };
  }
  async getDisplayMedia() {
    const t = new FakeTrack('video');
    return { getAudioTracks: () => [], getVideoTracks: () => [t] };
  }
  async enumerateDevices() {
    return [];
  }
}

export function tick(ms = 0) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Lets queued promises and microtasks run. */
export async function settle() {
  for (let i = 0; i < 10; i++) await tick();
}

export function reset() {
  FakeWebSocket.all = [];
  FakePeerConnection.all = [];
  FakePeerConnection.refuseOffers = 0;
}
