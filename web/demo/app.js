// The demo page: a join form, then the room. URL parameters (also the test
// hooks): ?room=R&name=N&mode=p2p|sfu&token=T&autojoin=1.
// `window.demo.client` is the RoomClient of the current call.

import { RoomClient } from '/sdk/index.js';
import { mountRoom } from './room-ui.js';
import { describeError } from './messages.js';

const params = new URLSearchParams(location.search);
const form = /** @type {HTMLFormElement} */ (document.getElementById('join'));
const roomEl = /** @type {HTMLElement} */ (document.getElementById('room'));
const formNotice = /** @type {HTMLElement} */ (form.querySelector('.notice'));
/** @type {Record<string, any>} */
const w = /** @type {any} */ (window);
w.demo = { client: null };

const field = (/** @type {string} */ n) => /** @type {HTMLInputElement} */ (form.elements.namedItem(n));
field('room').value = params.get('room') ?? randomRoom();
field('name').value = params.get('name') ?? localStorage.getItem('name') ?? '';
field('mode').value = params.get('mode') ?? '';

form.addEventListener('submit', (e) => {
  e.preventDefault();
  start(field('room').value.trim(), field('name').value.trim(), field('mode').value || undefined, params.get('token') ?? undefined);
});
if (params.get('autojoin') === '1' && params.get('room')) form.requestSubmit();

/**
 * @param {string} room
 * @param {string} name
 * @param {'p2p'|'sfu'|undefined} mode
 * @param {string|undefined} token
 */
async function start(room, name, mode, token) {
  localStorage.setItem('name', name);
  const client = new RoomClient();
  w.demo.client = client;
  form.hidden = true;
  roomEl.hidden = false;
  const ui = mountRoom(roomEl, client, {
    name,
    shareLink: (r) => {
      const u = new URL('/', location.href);
      u.searchParams.set('room', r);
      if (client.mode === 'p2p') u.searchParams.set('mode', 'p2p');
      return u.href;
    },
    onHangup: () => back('You left the room.'),
  });
  const back = (/** @type {string} */ text) => {
    ui.destroy();
    roomEl.hidden = true;
    form.hidden = false;
    formNotice.textContent = text;
    formNotice.hidden = !text;
  };
  // Media first, so the first offer carries it; a refusal is reported and the
  // call goes on without that source.
  await Promise.allSettled([client.setMicrophone(true), client.setCamera(true)]);
  try {
    await client.join({ room, name, mode, token });
  } catch (e) {
    const err = /** @type {any} */ (e);
    if (err.code === 'media_unavailable' && !mode) {
      // No media plane on this server: fall back to a browser-to-browser room.
      try {
        await client.join({ room, name, mode: 'p2p', token });
        ui.notify('This server has no SFU right now: the room runs peer to peer.', 'info');
        return;
      } catch (e2) {
        client.local.stopAll();
        back(describeError(/** @type {any} */ (e2)));
        return;
      }
    }
    client.local.stopAll();
    back(describeError(err));
  }
}

function randomRoom() {
  const words = ['amber', 'birch', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor'];
  return `${words[Math.floor(Math.random() * words.length)]}-${Math.floor(Math.random() * 9000 + 1000)}`;
}
