// Adaptive stream and subscriber choices (SFU rooms): for each remote track,
// how the page shows it (the rendered size of the elements it is attached
// to, whether any of them is visible) and what the application asked for
// (a quality or size cap, a pause). The server sends each subscriber the
// smallest layer that covers what it shows, and nothing for a track nobody
// sees; it learns both from `track-settings`, sent here, debounced and only
// when something changed.
//
// An element counts as showing its track while it is in the document, has
// a non-zero size, intersects the viewport, and the page is visible.

/**
 * @typedef {'low'|'medium'|'high'} Quality
 * @typedef {{ quality?: Quality | null, maxWidth?: number | null, maxHeight?: number | null, paused?: boolean }} TrackChoice
 * @typedef {{ visible: boolean, width: number, height: number, quality?: Quality, maxWidth?: number, maxHeight?: number, paused: boolean }} TrackSettings
 * @typedef {{ width: number, height: number, intersecting: boolean }} ElementView
 * @typedef {{
 *   participantId: string, trackId: string,
 *   elements: Set<Element>, everAttached: boolean,
 *   choice: TrackChoice, sent: string | null, live: boolean,
 * }} View
 */

export class TrackViews {
  /** @type {Map<string, View>} */
  #views = new Map();
  /** @type {Map<Element, ElementView>} */
  #elements = new Map();
  /** @type {Set<string>} */
  #dirty = new Set();
  /** @type {ReturnType<typeof setTimeout> | null} */
  #timer = null;
  #send;
  #debounceMs;
  /** @type {ResizeObserver | null} */
  #resize = null;
  /** @type {IntersectionObserver | null} */
  #intersection = null;
  #onVisibility = () => this.#touchAll();

  /**
   * @param {(msg: Record<string, unknown>) => void} send sends a signaling message
   * @param {{ debounceMs?: number }} [opts]
   */
  constructor(send, opts = {}) {
    this.#send = send;
    this.#debounceMs = opts.debounceMs ?? 150;
  }

  /**
   * Starts watching `element` as a view of the track; returns a function
   * that stops it.
   * @param {string} participantId
   * @param {string} trackId
   * @param {Element} element
   */
  attach(participantId, trackId, element) {
    const view = this.#view(participantId, trackId);
    view.elements.add(element);
    view.everAttached = true;
    if (!this.#elements.has(element)) {
      const r = element.getBoundingClientRect?.();
      const dpr = globalThis.devicePixelRatio ?? 1;
      this.#elements.set(element, { width: Math.round((r?.width ?? 0) * dpr), height: Math.round((r?.height ?? 0) * dpr), intersecting: true });
      this.#observers()?.resize.observe(element);
      this.#observers()?.intersection.observe(element);
    }
    this.#touch(view);
    return () => this.detach(participantId, trackId, element);
  }

  /**
   * @param {string} participantId
   * @param {string} trackId
   * @param {Element} element
   */
  detach(participantId, trackId, element) {
    const view = this.#views.get(key(participantId, trackId));
    if (!view || !view.elements.delete(element)) return;
    if (![...this.#views.values()].some((v) => v.elements.has(element))) {
      this.#elements.delete(element);
      this.#resize?.unobserve(element);
      this.#intersection?.unobserve(element);
    }
    this.#touch(view);
  }

  /**
   * Merges an application choice (quality, max size, pause) for a track.
   * @param {string} participantId
   * @param {string} trackId
   * @param {TrackChoice} patch
   */
  choose(participantId, trackId, patch) {
    const view = this.#view(participantId, trackId);
    view.choice = { ...view.choice, ...patch };
    this.#touch(view);
  }

  /**
   * A track (new, or again on a new connection) arrived from the server:
   * its settings go out again, since the server may not have them.
   * @param {string} participantId
   * @param {string} trackId
   */
  arrived(participantId, trackId) {
    const view = this.#view(participantId, trackId);
    view.live = true;
    view.sent = null;
    this.#touch(view);
  }

  /**
   * The track is gone: forget it (its elements stop being watched).
   * @param {string} participantId
   * @param {string} trackId
   */
  gone(participantId, trackId) {
    const view = this.#views.get(key(participantId, trackId));
    if (!view) return;
    for (const el of [...view.elements]) this.detach(participantId, trackId, el);
    this.#views.delete(key(participantId, trackId));
    this.#dirty.delete(key(participantId, trackId));
  }

  /** Every track's settings go out again (a new connection to the server). */
  resendAll() {
    for (const v of this.#views.values()) v.sent = null;
    this.#touchAll();
  }

  /** Stops every observer and timer. */
  close() {
    this.#resize?.disconnect();
    this.#intersection?.disconnect();
    this.#resize = this.#intersection = null;
    globalThis.document?.removeEventListener?.('visibilitychange', this.#onVisibility);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#views.clear();
    this.#elements.clear();
    this.#dirty.clear();
  }

  /**
   * What the server should know of a track now; null while there is
   * nothing to say (no element attached ever and no choice made: the
   * server's default, the best layer, stands).
   * @param {View} v
   * @returns {TrackSettings | null}
   */
  settings(v) {
    const c = v.choice;
    const chose = c.quality != null || c.maxWidth != null || c.maxHeight != null || c.paused === true;
    if (!v.everAttached && !chose) return null;
    const pageVisible = globalThis.document?.visibilityState !== 'hidden';
    let visible = !v.everAttached;
    let width = 0;
    let height = 0;
    if (v.everAttached && pageVisible) {
      for (const el of v.elements) {
        const e = this.#elements.get(el);
        if (!e || el.isConnected === false || !e.intersecting || e.width <= 0 || e.height <= 0) continue;
        visible = true;
        width = Math.max(width, e.width);
        height = Math.max(height, e.height);
      }
    }
    /** @type {TrackSettings} */
    const s = { visible, width, height, paused: c.paused === true };
    if (c.quality) s.quality = c.quality;
    if (c.maxWidth != null) s.maxWidth = c.maxWidth;
    if (c.maxHeight != null) s.maxHeight = c.maxHeight;
    return s;
  }

  /** The settings of a track as last computed (for tests and debugging). */
  /** @param {string} participantId @param {string} trackId */
  current(participantId, trackId) {
    const v = this.#views.get(key(participantId, trackId));
    return v ? this.settings(v) : null;
  }

  /** @param {string} participantId @param {string} trackId */
  #view(participantId, trackId) {
    const k = key(participantId, trackId);
    let v = this.#views.get(k);
    if (!v) {
      v = { participantId, trackId, elements: new Set(), everAttached: false, choice: {}, sent: null, live: false };
      this.#views.set(k, v);
    }
    return v;
  }

  /** @param {View} v */
  #touch(v) {
    this.#dirty.add(key(v.participantId, v.trackId));
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.#flush(), this.#debounceMs);
    /** @type {any} */ (this.#timer).unref?.(); // Node (unit tests): do not hold the process open
  }

  #touchAll() {
    for (const v of this.#views.values()) this.#touch(v);
  }

  #flush() {
    this.#timer = null;
    const keys = [...this.#dirty];
    this.#dirty.clear();
    for (const k of keys) {
      const v = this.#views.get(k);
      // Settings for a track that has not arrived wait for it (see arrived()).
      if (!v || !v.live) continue;
      const s = this.settings(v);
      if (!s) continue;
      const text = JSON.stringify(s);
      if (text === v.sent) continue;
      v.sent = text;
      this.#send({ type: 'track-settings', participant: v.participantId, track: v.trackId, ...s });
    }
  }

  /** The shared observers, made on first use (none outside a browser). */
  #observers() {
    if (this.#resize && this.#intersection) return { resize: this.#resize, intersection: this.#intersection };
    const RO = globalThis.ResizeObserver;
    const IO = globalThis.IntersectionObserver;
    if (!RO || !IO) return null;
    this.#resize = new RO((entries) => {
      const dpr = globalThis.devicePixelRatio ?? 1;
      for (const entry of entries) {
        const e = this.#elements.get(entry.target);
        if (!e) continue;
        // Device pixels: what a layer's size is compared with.
        const box = /** @type {any} */ (entry).devicePixelContentBoxSize?.[0];
        e.width = box ? box.inlineSize : Math.round(entry.contentRect.width * dpr);
        e.height = box ? box.blockSize : Math.round(entry.contentRect.height * dpr);
        this.#touchElement(entry.target);
      }
    });
    this.#intersection = new IO((entries) => {
      for (const entry of entries) {
        const e = this.#elements.get(entry.target);
        if (!e) continue;
        e.intersecting = entry.isIntersecting;
        this.#touchElement(entry.target);
      }
    });
    globalThis.document?.addEventListener?.('visibilitychange', this.#onVisibility);
    return { resize: this.#resize, intersection: this.#intersection };
  }

  /** @param {Element} el */
  #touchElement(el) {
    for (const v of this.#views.values()) if (v.elements.has(el)) this.#touch(v);
  }
}

/** @param {string} participantId @param {string} trackId */
function key(participantId, trackId) {
  return `${participantId}\n${trackId}`;
}
