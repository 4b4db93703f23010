// One RTCPeerConnection driven by "perfect negotiation": either side may
// offer at any time; on glare the polite side rolls back and answers, the
// impolite side ignores the other's offer. Signaling messages are handled
// strictly in arrival order.

import { Emitter } from './emitter.js';

/**
 * @typedef {{ type: 'offer'|'answer', sdp: string } | { type: 'ice-candidate', candidate: RTCIceCandidateInit | null }} PeerSignal
 * @typedef {{
 *   signal: PeerSignal,
 *   'connection-state': { state: RTCPeerConnectionState },
 *   track: RTCTrackEvent,
 *   error: { error: unknown },
 * }} PeerEvents
 */

/** @extends {Emitter<PeerEvents>} */
export class PeerLink extends Emitter {
  /** @type {RTCPeerConnection} */
  pc;
  polite;
  /** Runs after a remote offer is applied and before answering (attach local tracks here). */
  /** @type {(() => void | Promise<void>) | null} */
  beforeAnswer = null;
  /**
   * Offer again when an offer stays unanswered this long (0: never). A peer
   * whose socket was down when we offered never got it, and if it then offers
   * to us as the impolite side, each waits for the other's answer. Rolling
   * back and offering again settles it through the usual glare rules.
   */
  offerRetryMs = 0;
  #makingOffer = false;
  #ignoreOffer = false;
  #settingRemoteAnswer = false;
  #queue = Promise.resolve();
  #closed = false;

  /**
   * @param {RTCPeerConnection} pc
   * @param {{ polite: boolean }} opts
   */
  constructor(pc, { polite }) {
    super();
    this.pc = pc;
    this.polite = polite;
    pc.onnegotiationneeded = () => this.#negotiate();
    pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      this.emit('signal', { type: 'ice-candidate', candidate: c ? c.toJSON() : null });
    };
    pc.onconnectionstatechange = () => {
      this.emit('connection-state', { state: pc.connectionState });
    };
    pc.ontrack = (ev) => this.emit('track', ev);
  }

  get closed() {
    return this.#closed;
  }

  async #negotiate() {
    // One offer at a time: a change made meanwhile is caught by recheck().
    if (this.#closed || this.#makingOffer || this.pc.signalingState !== 'stable') return;
    try {
      this.#makingOffer = true;
      await this.pc.setLocalDescription();
      const d = this.pc.localDescription;
      if (d && !this.#closed) {
        this.emit('signal', { type: /** @type {'offer'} */ (d.type), sdp: d.sdp });
        if (this.offerRetryMs > 0) this.#retryLater(d.sdp);
      }
    } catch (error) {
      if (!this.#closed) this.emit('error', { error });
    } finally {
      this.#makingOffer = false;
    }
  }

  /** @param {string} sdp the offer sent */
  #retryLater(sdp) {
    const timer = setTimeout(() => {
      this.#queue = this.#queue.then(async () => {
        const pc = this.pc;
        if (this.#closed || pc.signalingState !== 'have-local-offer' || pc.localDescription?.sdp !== sdp) return;
        try {
          await pc.setLocalDescription({ type: 'rollback' });
        } catch {
          return;
        }
        await this.#negotiate();
      });
    }, this.offerRetryMs);
    /** @type {any} */ (timer).unref?.(); // Node (unit tests): do not hold the process open
  }

  /**
   * Feeds a message from the other side; resolves once it is applied.
   * @param {PeerSignal} msg
   */
  handle(msg) {
    const run = this.#queue.then(() => this.#apply(msg));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** @param {PeerSignal} msg */
  async #apply(msg) {
    if (this.#closed) return;
    const pc = this.pc;
    try {
      if (msg.type === 'answer' && pc.signalingState !== 'have-local-offer') return; // stale: that offer was re-sent
      if (msg.type === 'offer' || msg.type === 'answer') {
        const readyForOffer =
          !this.#makingOffer && (pc.signalingState === 'stable' || this.#settingRemoteAnswer);
        const collision = msg.type === 'offer' && !readyForOffer;
        this.#ignoreOffer = !this.polite && collision;
        if (this.#ignoreOffer) return;
        this.#settingRemoteAnswer = msg.type === 'answer';
        try {
          // With a local offer pending, this rolls it back implicitly.
          await pc.setRemoteDescription({ type: msg.type, sdp: msg.sdp });
        } finally {
          this.#settingRemoteAnswer = false;
        }
        if (msg.type === 'offer') {
          if (this.beforeAnswer) await this.beforeAnswer();
          await pc.setLocalDescription();
          const d = pc.localDescription;
          if (d && !this.#closed) this.emit('signal', { type: 'answer', sdp: d.sdp });
        }
        this.#recheck();
      } else if (msg.type === 'ice-candidate') {
        if (!msg.candidate) return; // end of candidates: nothing to do
        try {
          await pc.addIceCandidate(msg.candidate);
        } catch (error) {
          if (!this.#ignoreOffer) throw error;
        }
      }
    } catch (error) {
      if (!this.#closed) this.emit('error', { error });
    }
  }

  /**
   * Back in "stable", offers again if a local change is still unnegotiated.
   * After a glare the rolled-back offer's changes (new transceivers, removed
   * senders) are not always re-announced by negotiationneeded, and the
   * impolite side dropped that offer, so without this they would never go out.
   */
  #recheck() {
    setTimeout(() => {
      const pc = this.pc;
      if (this.#closed || this.#makingOffer || pc.signalingState !== 'stable') return;
      const pending = pc.getTransceivers().some((t) => {
        if (/** @type {any} */ (t).stopped || t.currentDirection === 'stopped') return false;
        if (t.mid === null) return t.direction !== 'inactive';
        const sends = (/** @type {string|null} */ d) => d === 'sendrecv' || d === 'sendonly';
        return t.currentDirection !== null && sends(t.direction) !== sends(t.currentDirection);
      });
      if (pending) this.#negotiate();
    }, 0);
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.pc.onnegotiationneeded = this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.close();
    this.pc.onconnectionstatechange = null;
    this.emit('connection-state', { state: 'closed' });
  }
}
