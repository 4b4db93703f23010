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
 *   recovery: { action: 'renegotiate' | 'restart-ice' },
 *   stuck: { reason: string },
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
  /**
   * Called after our offer was rolled back to answer theirs, and when
   * creating an offer failed, before offering again: the owner may replace
   * transceivers that were never negotiated (see `renewUnnegotiated`).
   * @type {(() => void) | null}
   */
  repair = null;
  /**
   * SFU only. Makes a new connection to take over when our very first offer
   * crosses the other side's first offer (it is dropped by the impolite
   * server), so the browser never rolls back a first offer: Chromium has
   * been seen to stop gathering candidates after that rollback, and to
   * refuse offering its transceivers again. Nothing was ever negotiated on
   * the old connection, so the server does not tell the two apart: the new
   * one answers its offer. `afterFresh` runs once that answer is out (add
   * the local tracks there).
   * @type {(() => RTCPeerConnection) | null}
   */
  fresh = null;
  /** @type {(() => void | Promise<void>) | null} */
  afterFresh = null;
  /** @type {RTCPeerConnection | null} the connection an offer is being made on */
  #offering = null;
  #restartPending = false;
  /** Offers that failed in a row (after their repair). */
  #failedOffers = 0;
  #stuck = false;
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
    this.#attach(pc);
  }

  /** @param {RTCPeerConnection} pc */
  #attach(pc) {
    pc.onnegotiationneeded = () => {
      // Chromium asks again after every round for as long as a transceiver
      // that was stopped before it was ever negotiated exists (the repair
      // leaves such ones); then only offer for a change of our own.
      if (this.#hasUnnegotiatedStopped() && !this.#pending()) return;
      this.#negotiate();
    };
    pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      this.emit('signal', { type: 'ice-candidate', candidate: c ? c.toJSON() : null });
    };
    pc.onconnectionstatechange = () => {
      this.emit('connection-state', { state: pc.connectionState });
    };
    pc.ontrack = (ev) => this.emit('track', ev);
  }

  /** @param {RTCPeerConnection} pc */
  #detach(pc) {
    pc.onnegotiationneeded = pc.onicecandidate = null;
    pc.ontrack = null;
    pc.onconnectionstatechange = null;
  }

  /** Whether an offer is being made on the current connection. */
  get #makingOffer() {
    return this.#offering !== null && this.#offering === this.pc;
  }

  get closed() {
    return this.#closed;
  }

  /** Offers now if the connection is stable and no offer is being made. */
  negotiate() {
    return this.#negotiate();
  }

  async #negotiate(repaired = false) {
    const pc = this.pc;
    // One offer at a time: a change made meanwhile is caught by recheck().
    if (this.#closed || this.#makingOffer || pc.signalingState !== 'stable') return;
    let failed = null;
    this.#offering = pc;
    try {
      await pc.setLocalDescription();
      if (pc !== this.pc) return; // replaced meanwhile (see `fresh`): that offer is void
      this.#restartPending = false;
      this.#failedOffers = 0;
      const d = pc.localDescription;
      if (d && !this.#closed) {
        this.emit('signal', { type: /** @type {'offer'} */ (d.type), sdp: d.sdp });
        if (this.offerRetryMs > 0) this.#retryLater(d.sdp);
      }
    } catch (error) {
      if (pc === this.pc) failed = { error };
    } finally {
      if (this.#offering === pc) this.#offering = null;
    }
    if (!failed || this.#closed) return;
    // Chromium refuses some offers after a rollback (header-extension ids
    // clash under BUNDLE); one more try with renewed transceivers.
    if (!repaired && this.repair && this.pc.signalingState === 'stable') {
      this.repair();
      return this.#negotiate(true);
    }
    this.#failedOffers++;
    this.emit('error', failed);
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
        this.repair?.();
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
    let pc = this.pc;
    try {
      if (msg.type === 'answer' && pc.signalingState !== 'have-local-offer') return; // stale: that offer was re-sent
      if (msg.type === 'offer' || msg.type === 'answer') {
        const readyForOffer =
          !this.#makingOffer && (pc.signalingState === 'stable' || this.#settingRemoteAnswer);
        const collision = msg.type === 'offer' && !readyForOffer;
        this.#ignoreOffer = !this.polite && collision;
        if (this.#ignoreOffer) return;
        // Polite side of a collision: applying their offer rolls ours back,
        // unless it was our very first offer (see `fresh`).
        let rollingBack = collision;
        let swapped = false;
        if (collision && this.fresh && pc.currentRemoteDescription === null) {
          pc = this.#swap(this.fresh());
          rollingBack = false;
          swapped = true;
        }
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
          if (rollingBack && !this.#closed) this.repair?.();
          if (swapped && !this.#closed) await this.afterFresh?.();
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
      if (this.#closed) return;
      this.emit('error', { error });
      // Their offer waits for an answer that cannot come: nothing more can
      // be negotiated on this connection.
      if (msg.type === 'offer') this.#giveUp('their offer could not be applied');
    }
  }

  /**
   * Tells the owner (once) that this connection cannot be repaired in place:
   * the owner may start over (the SDK re-joins an SFU room).
   * @param {string} reason
   */
  #giveUp(reason) {
    if (this.#stuck || this.#closed) return;
    this.#stuck = true;
    this.emit('stuck', { reason });
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
      if (this.#pending()) this.#negotiate();
    }, 0);
  }

  /** Whether one of our own changes waits for an offer. */
  #pending() {
    if (this.#restartPending) return true;
    return this.pc.getTransceivers().some((t) => {
      if (t.mid === null) return !isStopped(t) && t.direction !== 'inactive';
      if (t.direction === 'stopped') return t.currentDirection !== 'stopped';
      if (isStopped(t)) return false;
      return t.currentDirection !== null && sends(t.direction) !== sends(t.currentDirection);
    });
  }

  #hasUnnegotiatedStopped() {
    return this.pc.getTransceivers().some((t) => t.mid === null && isStopped(t));
  }

  /** Restarts ICE (the next offer carries new credentials). */
  restartIce() {
    if (this.#closed || !this.pc.restartIce) return;
    this.#restartPending = true;
    this.pc.restartIce();
    // negotiationneeded fires only when the browser's flag turns on, which
    // it may not (it can be on already, for a change we chose not to
    // offer): offer now, or once the round in progress ends (recheck).
    this.#negotiate();
  }

  /**
   * Watches that the connection comes up and that what we send gets
   * negotiated, and repairs it when not: a transceiver that should send but
   * was never negotiated for `settleMs` while the connection is stable gets
   * renewed (`repair`) and offered again; a connection with a transport that
   * is not `connected` for `connectMs` gets an ICE restart (the next wait
   * twice as long, up to 60 s). It gives up (`stuck`) after two offers in a
   * row that the browser refused even after their repair, or three ICE
   * restarts that did not bring the connection up. Stops when the link closes.
   * @param {{ checkMs?: number, settleMs?: number, connectMs?: number }} [o]
   */
  watch(o = {}) {
    const { checkMs = 1000, settleMs = 3000, connectMs = 6000 } = o;
    let unsentSince = 0;
    let downSince = 0;
    let wait = connectMs;
    let restarts = 0;
    const timer = setInterval(() => {
      const pc = this.pc;
      if (this.#closed || this.#stuck) return clearInterval(timer);
      const now = Date.now();
      if (this.#failedOffers >= 2) return this.#giveUp('offers keep failing');
      if (pc.signalingState !== 'stable' || this.#makingOffer) return;
      const unsent = pc.getTransceivers().some((t) => !isStopped(t) && sends(t.direction) && (t.mid === null || !sends(t.currentDirection)));
      if (!unsent) unsentSince = 0;
      else if (!unsentSince) unsentSince = now;
      else if (now - unsentSince >= settleMs) {
        unsentSince = now;
        this.emit('recovery', { action: 'renegotiate' });
        this.repair?.();
        this.#negotiate();
        return;
      }
      // Only a connection that has a transport (a negotiated m-line) can come up.
      const hasTransport = pc.remoteDescription !== null && pc.getTransceivers().some((t) => t.mid !== null && !isStopped(t));
      if (pc.connectionState === 'connected' || !hasTransport) {
        downSince = 0;
        if (pc.connectionState === 'connected') {
          wait = connectMs;
          restarts = 0;
        }
      } else if (!downSince) downSince = now;
      else if (now - downSince >= wait) {
        if (restarts >= 3) return this.#giveUp('the connection does not come up');
        downSince = now;
        restarts++;
        wait = Math.min(wait * 2, 60000);
        this.emit('recovery', { action: 'restart-ice' });
        this.restartIce();
      }
    }, checkMs);
    /** @type {any} */ (timer).unref?.(); // Node (unit tests): do not hold the process open
  }

  /**
   * Puts a new connection in place of the current one, which is closed.
   * @param {RTCPeerConnection} next
   */
  #swap(next) {
    const old = this.pc;
    this.#detach(old);
    old.close();
    this.pc = next;
    this.#attach(next);
    this.emit('connection-state', { state: next.connectionState });
    return next;
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach(this.pc);
    this.pc.close();
    this.emit('connection-state', { state: 'closed' });
  }
}

/** @param {string | null | undefined} d */
function sends(d) {
  return d === 'sendrecv' || d === 'sendonly';
}

/** @param {RTCRtpTransceiver} t */
function isStopped(t) {
  // `direction` becomes 'stopped' at stop(); `currentDirection` once negotiated.
  return t.direction === 'stopped' || t.currentDirection === 'stopped' || /** @type {any} */ (t).stopped === true;
}
