// The room view shared by the demo page and the embedded room: video grid,
// control bar, participant list, device picker, stats panel and notices.
// It only listens to RoomClient events and calls RoomClient methods.

import { TileGrid } from './tiles.js';
import { renderParticipants, renderStats, StatsPoller, fetchServerView, renderServerView } from './panels.js';
import { describeError } from './messages.js';

const TEMPLATE = `
  <header class="bar top">
    <h1 class="room-name"></h1>
    <span class="count" aria-live="polite"></span>
    <span class="signal" aria-live="polite"></span>
    <div class="share">
      <input class="share-link" readonly aria-label="Room link to share">
      <button type="button" class="copy">Copy link</button>
    </div>
  </header>
  <div class="notice" role="alert" hidden></div>
  <div class="body">
    <main class="grid" aria-label="Participants' video"></main>
    <aside class="panel people" hidden aria-label="Participants"><h2>Participants</h2><ul></ul></aside>
    <aside class="panel devices" hidden aria-label="Devices"><h2>Devices</h2>
      <label>Microphone <select class="mic-select"></select></label>
      <label>Camera <select class="cam-select"></select></label>
    </aside>
    <aside class="panel stats" hidden aria-label="Statistics"><h2>Statistics</h2>
      <table><thead><tr><th>Track</th><th>Kind</th><th>Codec</th><th>Bitrate</th><th>Loss</th><th>RTT</th><th>Resolution</th></tr></thead><tbody></tbody></table>
      <p class="server-view" hidden></p>
    </aside>
  </div>
  <nav class="bar controls" aria-label="Call controls">
    <button type="button" class="mic" aria-pressed="false" aria-keyshortcuts="M" title="Microphone (M)">Mic</button>
    <button type="button" class="cam" aria-pressed="false" aria-keyshortcuts="V" title="Camera (V)">Camera</button>
    <button type="button" class="screen" aria-pressed="false">Share screen</button>
    <button type="button" class="toggle" data-panel="devices" aria-pressed="false">Devices</button>
    <button type="button" class="toggle" data-panel="people" aria-pressed="false">People</button>
    <button type="button" class="toggle" data-panel="stats" aria-pressed="false">Stats</button>
    <button type="button" class="hangup">Hang up</button>
  </nav>`;

/**
 * @param {HTMLElement} root
 * @param {import('/sdk/client.js').RoomClient} client
 * @param {{ name: string, viewer?: boolean, shareLink?: (room: string) => string, onHangup?: () => void }} opts
 *   viewer: the participant may only watch (no publish grant): no self-view and
 *   no microphone, camera or screen buttons; `joined.permissions` settles it
 */
export function mountRoom(root, client, opts) {
  root.innerHTML = TEMPLATE;
  root.classList.add('room');
  const $ = (/** @type {string} */ sel) => /** @type {HTMLElement} */ (root.querySelector(sel));
  const grid = new TileGrid($('.grid'));
  const notice = $('.notice');
  const peopleList = $('.people ul');
  const statsBody = /** @type {HTMLTableSectionElement} */ ($('.stats tbody'));
  /** @type {(() => void)[]} */
  const offs = [];
  const on = /** @type {typeof client.on} */ ((type, fn) => {
    const off = client.on(type, fn);
    offs.push(off);
    return off;
  });
  let serverState = 'new';
  let selfName = opts.name;
  /** Tile views of remote video tracks, told to the server (adaptive stream). */
  /** @type {Map<MediaStreamTrack, () => void>} */
  const views = new Map();

  /** Shows the room as a viewer sees it, or as a publisher does. */
  const setViewer = (/** @type {boolean} */ viewer) => {
    root.dataset.role = viewer ? 'viewer' : 'publisher';
    for (const sel of ['.mic', '.cam', '.screen', '.toggle[data-panel="devices"]']) $(sel).hidden = viewer;
    if (viewer) {
      grid.remove('local');
      $('.devices').hidden = true;
    } else if (!grid.tiles.has('local')) {
      grid.ensure('local', { name: `${selfName} (you)`, local: true });
      const cam = client.local.tracks.camera;
      if (cam) grid.addTrack('local', cam);
    }
  };
  setViewer(!!opts.viewer);

  /** @param {string} text @param {'error'|'info'} [kind] */
  const notify = (text, kind = 'error') => {
    notice.textContent = text;
    notice.dataset.kind = kind;
    notice.hidden = !text;
  };
  const nameOf = (/** @type {string|null} */ id) => (id && client.participants.get(id)?.name) || (id ? id.slice(0, 6) : 'server');
  const refresh = () => {
    const n = client.participants.size + 1;
    $('.count').textContent = `${n} ${n === 1 ? 'person' : 'people'}`;
    renderParticipants(peopleList, client, selfName);
    const s = client.localState();
    for (const [cls, on] of [['.mic', s.microphone], ['.cam', s.camera], ['.screen', s.screen]]) {
      const b = $(/** @type {string} */ (cls));
      b.setAttribute('aria-pressed', String(on));
    }
    $('.mic').textContent = s.microphone ? 'Mute' : 'Unmute';
    $('.cam').textContent = s.camera ? 'Camera off' : 'Camera on';
    $('.screen').textContent = s.screen ? 'Stop sharing' : 'Share screen';
    grid.set('local', { mic: s.microphone ? 'on' : 'off', camera: s.camera ? 'on' : 'off' });
  };
  const applyMedia = (/** @type {string} */ id, /** @type {any} */ media) => {
    const viewer = client.participants.get(id)?.permissions?.publish === false;
    grid.set(id, { mic: media?.microphone ? 'on' : 'off', camera: media?.camera ? 'on' : 'off', viewer: String(viewer) });
    if (!media?.screen) grid.remove(`screen:${id}`);
  };

  on('joined', (j) => {
    // The server's display name (a token may carry it) is the one others see.
    if (j.name) {
      selfName = j.name;
      grid.setName('local', `${j.name} (you)`);
    }
    $('.room-name').textContent = j.room;
    const link = opts.shareLink?.(j.room) ?? `${location.origin}/?room=${encodeURIComponent(j.room)}`;
    /** @type {HTMLInputElement} */ ($('.share-link')).value = link;
    root.dataset.mode = j.mode;
    setViewer(!j.permissions.publish);
    if (j.resumed) notify('');
    refresh();
  });
  on('participant-joined', ({ participant: p }) => {
    grid.ensure(p.id, { name: p.name });
    applyMedia(p.id, p.media);
    if (client.mode === 'sfu') grid.set(p.id, { connection: serverState });
    for (const rt of client.tracksOf(p.id)) onTrack(p.id, rt.track, rt.source);
    refresh();
  });
  on('participant-left', ({ id }) => {
    grid.remove(id);
    grid.remove(`screen:${id}`);
    refresh();
  });
  on('media-state', ({ participantId, media }) => {
    applyMedia(participantId, media);
    refresh();
  });
  const onTrack = (/** @type {string} */ id, /** @type {MediaStreamTrack} */ track, /** @type {string} */ source) => {
    const p = client.participants.get(id);
    if (!p) return; // added when the participant-joined event comes
    // A viewer sends nothing: in a P2P room its connection still has
    // receiving slots (sendrecv, in case it could publish), whose tracks
    // never carry media. Its tile stays the viewer's initial.
    if (p.permissions?.publish === false) return;
    if (source === 'screen' || source === 'screen-audio') {
      grid.ensure(`screen:${id}`, { name: p.name, screenOf: id });
      grid.addTrack(`screen:${id}`, track);
    } else {
      grid.ensure(id, { name: p.name });
      grid.addTrack(id, track);
    }
    // The server sends a layer that fits the tile, and nothing while it is not seen.
    const tile = grid.tiles.get(source === 'screen' || source === 'screen-audio' ? `screen:${id}` : id);
    if (track.kind === 'video' && tile && !views.has(track)) views.set(track, client.attach(track, tile.video));
  };
  on('track-added', ({ participantId, track, source }) => onTrack(participantId, track, source));
  on('track-removed', ({ participantId, track, source }) => {
    views.get(track)?.();
    views.delete(track);
    const key = source === 'screen' || source === 'screen-audio' ? `screen:${participantId}` : participantId;
    grid.removeTrack(key, track);
    if (key.startsWith('screen:') && !grid.tiles.get(key)?.stream.getTracks().length) grid.remove(key);
  });
  on('local-track', ({ source, track }) => {
    if (source === 'screen') {
      if (track) {
        grid.ensure('screen:local', { name: selfName, screenOf: 'local' });
        grid.addTrack('screen:local', track);
      } else grid.remove('screen:local');
    } else if (source === 'camera') {
      const t = grid.tiles.get('local');
      t?.stream.getVideoTracks().forEach((v) => t.stream.removeTrack(v));
      if (track) grid.addTrack('local', track);
    }
    refresh();
  });
  on('local-media', refresh);
  // The SDK repairs a media connection that does not come up (docs/sdk.md,
  // Recovery); the slow repairs are shown until the connection is up again.
  let repairing = false;
  on('connection-recovery', ({ action }) => {
    if (action !== 'restart-ice' && action !== 'rejoin') return;
    repairing = true;
    notify('Repairing the media connection…', 'info');
  });
  on('connection-state', ({ peerId, state }) => {
    if (repairing && state === 'connected') {
      repairing = false;
      notify('');
    }
    if (peerId === null) {
      serverState = state;
      grid.set('local', { connection: state });
      for (const id of client.participants.keys()) grid.set(id, { connection: state });
    } else grid.set(peerId, { connection: state });
    if (state === 'failed') notify(`The media connection${peerId ? ` to ${nameOf(peerId)}` : ''} failed.`);
  });
  on('signaling-state', ({ state }) => {
    $('.signal').textContent = state === 'open' ? '' : state;
    root.dataset.signaling = state;
    if (state === 'reconnecting') notify('Connection to the server lost: reconnecting…', 'info');
    if (state === 'open' && notice.dataset.kind === 'info') notify('');
  });
  on('error', (e) => notify(describeError(e)));
  // A video the server stopped sending because this connection cannot
  // carry even its lowest layer: say so on its tile rather than show it
  // frozen.
  on('stream-state', ({ participantId, track, paused, reason }) => {
    const screen = `screen:${participantId}`;
    const key = track && grid.tiles.get(screen)?.stream.getTracks().includes(track) ? screen : participantId;
    grid.set(key, { serverPaused: paused ? reason ?? 'bandwidth' : '' });
  });

  // Who speaks: in SFU rooms the server's `active-speakers` (the loudest
  // tile is highlighted, and first in a large room); in P2P rooms the
  // audio levels of the connections' stats.
  on('active-speakers', ({ speakers }) => {
    const key = (/** @type {string} */ id) => (id === client.id ? 'local' : id);
    const speaking = new Set(speakers.map((s) => key(s.id)));
    const loudest = speakers.length ? key(speakers[0].id) : null;
    for (const k of grid.tiles.keys()) {
      if (k.startsWith('screen:')) continue;
      grid.set(k, { speaking: String(speaking.has(k)), activeSpeaker: String(k === loudest) });
    }
  });
  const poller = new StatsPoller(client, (rows, quality) => {
    if (!$('.stats').hidden) renderStats(statsBody, rows, nameOf);
    /** @type {Set<string>} */
    const speaking = new Set();
    for (const r of rows) {
      if (r.kind === 'audio' && (r.audioLevel ?? 0) > 0.04) speaking.add(r.direction === 'out' ? 'local' : r.participantId ?? '');
    }
    for (const key of grid.tiles.keys()) {
      if (key.startsWith('screen:')) continue;
      const q = key === 'local' ? quality.get(null) : quality.get(client.mode === 'sfu' ? null : key);
      /** @type {Record<string, string>} */
      const attrs = { quality: q ?? 'unknown' };
      if (client.mode !== 'sfu') attrs.speaking = String(speaking.has(key));
      grid.set(key, attrs);
    }
  });
  poller.start();
  // The server's view of our downlink, every 2 s while the panel is open.
  const serverView = $('.server-view');
  const serverTimer = setInterval(() => {
    if ($('.stats').hidden) return;
    fetchServerView(client)
      .then((sub) => renderServerView(serverView, sub, nameOf))
      .catch(() => renderServerView(serverView, null, nameOf));
  }, 2000);
  offs.push(() => clearInterval(serverTimer));

  const act = (/** @type {() => Promise<unknown>} */ f) => f().catch(() => {}); // errors arrive as 'error' events
  $('.mic').addEventListener('click', () => act(() => client.setMicrophone(!client.localState().microphone)));
  $('.cam').addEventListener('click', () => act(() => client.setCamera(!client.localState().camera)));
  $('.screen').addEventListener('click', () => act(() => client.setScreenShare(!client.localState().screen)));
  $('.hangup').addEventListener('click', () => act(() => hangup()));
  $('.copy').addEventListener('click', () => {
    const input = /** @type {HTMLInputElement} */ ($('.share-link'));
    input.select();
    navigator.clipboard?.writeText(input.value).then(() => notify('Link copied.', 'info'), () => {});
  });
  for (const b of root.querySelectorAll('.toggle')) {
    b.addEventListener('click', () => {
      const panel = $(`.panel.${/** @type {HTMLElement} */ (b).dataset.panel}`);
      panel.hidden = !panel.hidden;
      b.setAttribute('aria-pressed', String(!panel.hidden));
      if (!panel.hidden && panel.classList.contains('devices')) fillDevices().catch(() => {});
    });
  }
  // M and V toggle microphone and camera, except while typing in a field.
  const onKey = (/** @type {KeyboardEvent} */ e) => {
    const t = /** @type {HTMLElement} */ (e.target);
    if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(t?.tagName ?? '')) return;
    if (e.key === 'm' || e.key === 'M') $('.mic').click();
    else if (e.key === 'v' || e.key === 'V') $('.cam').click();
  };
  document.addEventListener('keydown', onKey);
  offs.push(() => document.removeEventListener('keydown', onKey));
  const fillDevices = async () => {
    const list = await client.local.listDevices();
    for (const [sel, kind] of /** @type {const} */ ([['.mic-select', 'microphone'], ['.cam-select', 'camera']])) {
      const select = /** @type {HTMLSelectElement} */ ($(sel));
      const current = client.local.tracks[kind]?.getSettings().deviceId ?? client.local.devices[kind];
      select.replaceChildren(
        ...list[kind].map((d, i) => new Option(d.label || `${kind} ${i + 1}`, d.deviceId, false, d.deviceId === current)),
      );
      select.onchange = () => act(() => client.setDevice(kind, select.value));
    }
  };

  const hangup = async () => {
    await client.leave();
    opts.onHangup?.();
  };
  on('left', () => {
    views.forEach((detach) => detach());
    views.clear();
    poller.stop();
    grid.clear();
  });

  return {
    notify,
    hangup,
    destroy() {
      poller.stop();
      offs.forEach((f) => f());
      grid.clear();
      root.replaceChildren();
    },
  };
}
