// The signaling WebSocket: JSON frames in and out, and reconnection with
// exponential backoff when the socket drops without `close()` being called.
// It knows nothing about rooms; the client re-joins (with `resume`) on "open".
// Given several server URLs (the nodes of a cluster), each reconnection tries
// the next one, so a dead node is left for a live one.

import { Emitter } from './emitter.js';

/**
 * @typedef {'idle'|'connecting'|'open'|'reconnecting'|'closed'} SocketState
 * @typedef {{ initialMs?: number, maxMs?: number, factor?: number }} Backoff
 * @typedef {{
 *   state: { state: SocketState, attempt: number },
 *   open: { reconnected: boolean },
 *   message: Record<string, any>,
 * }} SocketEvents
 */

/** @extends {Emitter<SocketEvents>} */
export class SignalingSocket extends Emitter {
  /** @type {SocketState} */
  state = 'idle';
  /** @type {WebSocket | null} the live socket (tests may close it to simulate a drop) */
  socket = null;
  /** @type {string[]} */
  #urls;
  #index = 0;
  #retired = false;
  #WS;
  #backoff;
  #attempt = 0;
  #everOpened = false;
  /** @type {ReturnType<typeof setTimeout> | null} */
  #timer = null;

  /**
   * @param {string | string[]} url ws:// or wss:// address of `/ws`, or
   *   several (nodes of one cluster), tried in turn
   * @param {{ WebSocket?: typeof WebSocket, backoff?: Backoff }} [opts]
   */
  constructor(url, opts = {}) {
    super();
    this.#urls = (Array.isArray(url) ? url : [url]).filter(Boolean);
    if (this.#urls.length === 0) throw new TypeError('SignalingSocket needs a URL');
    this.#WS = opts.WebSocket ?? globalThis.WebSocket;
    this.#backoff = { initialMs: 250, maxMs: 5000, factor: 2, ...opts.backoff };
  }

  /** Opens the socket (no-op when already open or opening). */
  connect() {
    if (this.state === 'open' || this.state === 'connecting') return;
    this.#open();
  }

  /**
   * Sends one message; returns false when the socket is not open (the
   * message is dropped: callers re-send state after a reconnect).
   * @param {Record<string, any>} msg
   */
  send(msg) {
    if (!this.socket || this.state !== 'open') return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** The URL of the socket now open or opening. */
  get url() {
    return this.#urls[this.#index];
  }

  /**
   * Goes to another server now (a cluster's `redirect`): closes this
   * socket and opens one to `url`, which is tried first from then on.
   * @param {string} url
   */
  switchTo(url) {
    this.#urls = [url, ...this.#urls.filter((u) => u !== url)];
    this.#index = 0;
    this.#attempt = 0;
    const ws = this.socket;
    this.socket = null;
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
      try {
        ws.close(1000, 'redirected');
      } catch {
        // already closing
      }
    }
    this.#open();
  }

  /**
   * Keeps this socket until `close()` but never reconnects it: it carries
   * an old connection while the client moves to another node.
   */
  retire() {
    this.#retired = true;
  }

  /** Closes for good: no reconnection. */
  close() {
    this.#clearTimer();
    const ws = this.socket;
    this.socket = null;
    this.#setState('closed');
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
      try {
        ws.close(1000, 'bye');
      } catch {
        // already closing
      }
    }
  }

  #open() {
    this.#clearTimer();
    this.#setState(this.#everOpened ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new this.#WS(this.url);
    } catch (e) {
      this.#scheduleReconnect();
      return;
    }
    this.socket = ws;
    ws.onopen = () => {
      const reconnected = this.#everOpened;
      this.#everOpened = true;
      this.#attempt = 0;
      this.#setState('open');
      this.emit('open', { reconnected });
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(typeof ev.data === 'string' ? ev.data : '');
      } catch {
        return; // the server only sends JSON; ignore anything else
      }
      if (msg && typeof msg.type === 'string') this.emit('message', msg);
    };
    ws.onerror = () => {
      // onclose follows and decides what to do
    };
    ws.onclose = () => {
      if (this.socket !== ws) return;
      this.socket = null;
      this.#scheduleReconnect();
    };
  }

  #scheduleReconnect() {
    if (this.state === 'closed') return;
    if (this.#retired) {
      this.#setState('closed');
      return;
    }
    // The next server, if there are several: this one may be gone.
    this.#index = (this.#index + 1) % this.#urls.length;
    const { initialMs = 250, maxMs = 5000, factor = 2 } = this.#backoff;
    const delay = Math.min(maxMs, initialMs * factor ** this.#attempt);
    this.#attempt += 1;
    this.#setState('reconnecting');
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #clearTimer() {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** @param {SocketState} state */
  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', { state, attempt: this.#attempt });
  }
}
