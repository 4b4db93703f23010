// Side panels: the participant list and the stats table, plus the poller
// that reads getStats() twice a second for the stats table, the speaking
// indicators and the connection-quality badges, and the server's view of
// this participant's downlink in SFU rooms.

import { summarizeStats, qualityOf } from '/sdk/index.js';

/**
 * @param {HTMLElement} list
 * @param {import('/sdk/client.js').RoomClient} client
 * @param {string} selfName
 */
export function renderParticipants(list, client, selfName) {
  list.replaceChildren();
  const add = (/** @type {string} */ name, /** @type {any} */ media, /** @type {boolean} */ self, /** @type {boolean} */ viewer) => {
    const li = document.createElement('li');
    const flags = viewer ? ['viewer'] : [media?.microphone ? '' : 'muted', media?.camera ? '' : 'camera off', media?.screen ? 'sharing' : ''].filter(Boolean);
    li.textContent = `${name}${self ? ' (you)' : ''}${flags.length ? ` — ${flags.join(', ')}` : ''}`;
    list.append(li);
  };
  add(selfName, client.localState(), true, client.room !== null && !client.permissions.publish);
  for (const p of client.participants.values()) add(p.name, p.media, false, p.permissions?.publish === false);
}

export class StatsPoller {
  /** @type {import('/sdk/stats.js').StatsMemory} */
  #memory = new Map();
  /** @type {ReturnType<typeof setInterval> | null} */
  #timer = null;
  #client;
  #onUpdate;

  /**
   * @param {import('/sdk/client.js').RoomClient} client
   * @param {(rows: (import('/sdk/stats.js').TrackStats & { peerId: string | null, participantId: string | null })[], quality: Map<string|null, string>) => void} onUpdate
   */
  constructor(client, onUpdate) {
    this.#client = client;
    this.#onUpdate = onUpdate;
  }

  start() {
    if (!this.#timer) this.#timer = setInterval(() => this.#poll().catch(() => {}), 500);
  }

  stop() {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#memory.clear();
  }

  async #poll() {
    const all = [];
    /** @type {Map<string|null, string>} */
    const quality = new Map();
    const owners = new Map();
    for (const p of this.#client.participants.keys()) for (const rt of this.#client.tracksOf(p)) owners.set(rt.track.id, p);
    for (const { peerId, report } of await this.#client.getStats()) {
      const rows = summarizeStats(report, this.#memory);
      quality.set(peerId, qualityOf(rows));
      for (const r of rows) all.push({ ...r, peerId, participantId: r.direction === 'in' ? owners.get(r.trackId) ?? peerId : null });
    }
    this.#onUpdate(all, quality);
  }
}

/**
 * @param {HTMLTableSectionElement} body
 * @param {(import('/sdk/stats.js').TrackStats & { participantId: string | null, peerId: string | null })[]} rows
 * @param {(id: string | null) => string} nameOf
 */
export function renderStats(body, rows, nameOf) {
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    const res = r.width ? `${r.width}×${r.height}${r.fps ? ` @${Math.round(r.fps)}` : ''}` : '';
    const cells = [
      r.direction === 'in' ? `⬇ ${nameOf(r.participantId)}` : r.peerId ? `⬆ to ${nameOf(r.peerId)}` : '⬆ you',
      r.kind,
      r.codec,
      `${r.bitrateKbps} kb/s`,
      `${r.lossPercent}% (${r.packetsLost})`,
      r.rttMs == null ? '' : `${r.rttMs} ms`,
      res,
    ];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    body.append(tr);
  }
}

/**
 * The server's figures for this participant's downlink in an SFU room (its
 * bandwidth estimate, what it allocated and sent, each video's layer), from
 * the server's `/api/stats`; null where the server does not show them to
 * this page (a stats token is set) or the room is P2P.
 * @param {import('/sdk/client.js').RoomClient} client
 */
export async function fetchServerView(client) {
  const ws = client.signaling?.url;
  if (!ws || client.mode !== 'sfu' || !client.id) return null;
  const r = await fetch(new URL('/api/stats', ws.replace(/^ws/, 'http')), { cache: 'no-store' });
  if (!r.ok) return null;
  const st = await r.json();
  return st?.media?.subscribers?.find((/** @type {any} */ s) => s.participant === client.id) ?? null;
}

/**
 * @param {HTMLElement} el
 * @param {any} sub one entry of `/api/stats` `media.subscribers`, or null
 * @param {(id: string|null) => string} nameOf
 */
export function renderServerView(el, sub, nameOf) {
  if (!sub) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  const kb = (/** @type {number|null|undefined} */ b) => (b == null ? '–' : `${Math.round(b / 1000)} kb/s`);
  const head = sub.estimation
    ? `Server: your downlink estimated at ${kb(sub.estimateBps)}${sub.congested ? ' (congested)' : ''}, ${kb(sub.allocatedBps)} allocated, ${kb(sub.sentBps)} sent`
    : `Server: no estimate of your downlink yet, ${kb(sub.sentBps)} sent`;
  const videos = (sub.tracks ?? [])
    .filter((/** @type {any} */ t) => t.kind === 'video')
    .map((/** @type {any} */ t) => `${nameOf(t.publisher)} ${t.paused ? `paused (${t.paused})` : (t.layer ?? '–')}`);
  el.hidden = false;
  el.textContent = videos.length ? `${head}. Videos: ${videos.join(', ')}.` : `${head}.`;
}
