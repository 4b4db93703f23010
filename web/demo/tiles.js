// The video grid: one tile per participant (and one per screen share), laid
// out in a near-square grid that adapts from 1 to 25 tiles.
//
// A tile's <video> gets its stream only once the stream has a track and the
// document has finished loading. A media element that is loading but has no
// data yet delays its document's `load` event (HTML's "delaying the load
// event" rule), and an embedded room's iframe delays its host page's: a
// viewer who publishes nothing, or media that never connects, would keep the
// host page loading for ever.

/**
 * @typedef {{ el: HTMLElement, video: HTMLVideoElement, stream: MediaStream }} Tile
 */

export class TileGrid {
  /** @type {Map<string, Tile>} key: participant id, `local`, or `screen:<id>` */
  tiles = new Map();
  #root;

  /** @param {HTMLElement} root */
  constructor(root) {
    this.#root = root;
    globalThis.addEventListener?.('resize', () => this.#layout());
    if (!documentLoaded()) {
      globalThis.addEventListener?.('load', () => this.tiles.forEach((t) => this.#attach(t)), { once: true });
    }
  }

  /**
   * @param {string} key
   * @param {{ name: string, local?: boolean, screenOf?: string }} info
   */
  ensure(key, info) {
    let tile = this.tiles.get(key);
    if (tile) return tile;
    const el = document.createElement('figure');
    el.className = 'tile';
    if (info.local) el.dataset.local = '1';
    else if (info.screenOf) el.dataset.screen = info.screenOf;
    else el.dataset.participant = key;
    el.dataset.mic = 'off';
    el.dataset.camera = 'off';
    el.innerHTML = `
      <video autoplay playsinline></video>
      <div class="avatar" aria-hidden="true"></div>
      <figcaption>
        <span class="name"></span>
        <span class="badge mic-off" title="Microphone off" aria-label="microphone off">mic off</span>
        <span class="badge cam-off" title="Camera off" aria-label="camera off">cam off</span>
        <span class="badge viewer" title="Watching only: publishes no camera or microphone">viewer</span>
        <span class="badge speaking" aria-hidden="true">speaking</span>
        <span class="badge low-bandwidth" title="The server holds this video back: your connection cannot carry it now">paused: low bandwidth</span>
        <span class="badge conn" title="Connection"></span>
        <span class="badge quality" title="Connection quality"></span>
      </figcaption>`;
    const video = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    video.muted = !!info.local; // never play our own microphone back
    tile = { el, video, stream: new MediaStream() };
    this.tiles.set(key, tile);
    this.setName(key, info.screenOf ? `${info.name} (screen)` : info.name);
    if (info.screenOf) el.dataset.camera = 'on';
    this.#root.append(el);
    this.#layout();
    return tile;
  }

  /** @param {string} key @param {string} name */
  setName(key, name) {
    const t = this.tiles.get(key);
    if (!t) return;
    /** @type {HTMLElement} */ (t.el.querySelector('.name')).textContent = name;
    /** @type {HTMLElement} */ (t.el.querySelector('.avatar')).textContent = (name.trim()[0] ?? '?').toUpperCase();
    t.el.setAttribute('aria-label', name);
  }

  /** @param {string} key @param {MediaStreamTrack} track */
  addTrack(key, track) {
    const t = this.tiles.get(key);
    if (!t) return;
    for (const old of t.stream.getTracks()) if (old.kind === track.kind) t.stream.removeTrack(old);
    t.stream.addTrack(track);
    this.#attach(t);
  }

  /** @param {string} key @param {MediaStreamTrack} track */
  removeTrack(key, track) {
    const t = this.tiles.get(key);
    if (!t) return;
    t.stream.removeTrack(track);
    this.#attach(t);
  }

  /**
   * Points the tile's video at its stream, or at nothing while the stream
   * is empty or the document is still loading (see the top of this file).
   * @param {Tile} t
   */
  #attach(t) {
    if (t.stream.getTracks().length === 0) {
      t.video.srcObject = null;
      return;
    }
    if (!documentLoaded()) return; // the load listener attaches it
    // Re-assigning srcObject makes the element pick up the new track set.
    t.video.srcObject = t.stream;
    t.video.play().catch(() => {});
  }

  /** @param {string} key @param {Record<string, string>} attrs e.g. { mic: 'off', connection: 'connected' } */
  set(key, attrs) {
    const t = this.tiles.get(key);
    if (!t) return;
    for (const [k, v] of Object.entries(attrs)) t.el.dataset[k] = v;
    const conn = /** @type {HTMLElement} */ (t.el.querySelector('.conn'));
    if (attrs.connection) conn.textContent = attrs.connection;
    const q = /** @type {HTMLElement} */ (t.el.querySelector('.quality'));
    if (attrs.quality) q.textContent = { good: '●●●', fair: '●●○', poor: '●○○', unknown: '' }[attrs.quality] ?? '';
  }

  /** @param {string} key */
  remove(key) {
    const t = this.tiles.get(key);
    if (!t) return;
    t.video.srcObject = null;
    t.el.remove();
    this.tiles.delete(key);
    this.#layout();
  }

  clear() {
    for (const key of [...this.tiles.keys()]) this.remove(key);
  }

  #layout() {
    const { cols, rows } = gridShape(this.tiles.size, (globalThis.innerWidth ?? 1000) < 640);
    this.#root.style.setProperty('--cols', String(cols));
    this.#root.style.setProperty('--rows', String(rows));
    this.#root.dataset.count = String(this.tiles.size);
    // In a large room the active speaker's tile moves to the front.
    this.#root.dataset.large = String(this.tiles.size > 6);
  }
}

function documentLoaded() {
  return globalThis.document?.readyState === 'complete';
}

/**
 * Columns and rows for `n` tiles: near-square, at most 2 columns on a
 * narrow (phone) screen, where 1 or 2 tiles stack.
 * @param {number} n
 * @param {boolean} narrow
 */
export function gridShape(n, narrow) {
  const count = Math.max(1, n);
  let cols = Math.ceil(Math.sqrt(count));
  if (narrow) cols = Math.min(cols, count <= 2 ? 1 : 2);
  return { cols, rows: Math.ceil(count / cols) };
}
