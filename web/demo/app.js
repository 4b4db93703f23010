// The demo page: a join form, then the room. URL parameters (also the test
// hooks): ?room=R&name=N&mode=p2p|sfu&token=T&autojoin=1.
// `window.demo.client` is the RoomClient of the current call.

import { startCall } from './call.js';

const params = new URLSearchParams(location.search);
const form = /** @type {HTMLFormElement} */ (document.getElementById('join'));
const roomEl = /** @type {HTMLElement} */ (document.getElementById('room'));
const formNotice = /** @type {HTMLElement} */ (form.querySelector('.notice'));
/** @type {any} */
const w = window;
w.demo = { client: null };

const field = (/** @type {string} */ n) => /** @type {HTMLInputElement} */ (form.elements.namedItem(n));
field('room').value = params.get('room') ?? randomRoom();
field('name').value = params.get('name') ?? localStorage.getItem('name') ?? '';
field('mode').value = params.get('mode') ?? '';

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = field('name').value.trim();
  localStorage.setItem('name', name);
  form.hidden = true;
  roomEl.hidden = false;
  startCall(
    roomEl,
    {
      room: field('room').value.trim(),
      name,
      mode: /** @type {any} */ (field('mode').value || undefined),
      token: params.get('token') ?? undefined,
      shareLink: (r, client) => {
        const u = new URL('/', location.href);
        u.searchParams.set('room', r);
        if (client.mode === 'p2p') u.searchParams.set('mode', 'p2p');
        return u.href;
      },
    },
    {
      onClient: (client) => (w.demo.client = client),
      onEnd: (text) => {
        roomEl.hidden = true;
        form.hidden = false;
        formNotice.textContent = text;
        formNotice.hidden = !text;
      },
    },
  );
});
if (params.get('autojoin') === '1' && params.get('room')) form.requestSubmit();

function randomRoom() {
  const words = ['amber', 'birch', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor'];
  return `${words[Math.floor(Math.random() * words.length)]}-${Math.floor(Math.random() * 9000 + 1000)}`;
}
