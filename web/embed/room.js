// The room inside the embed iframe. Parameters come in the URL fragment
// (room, token, name, mode, autojoin, parent). It talks to the host page
// only through postMessage, to and from the parent's origin.

import { startCall } from '/demo/call.js';
import { describeError } from '/demo/messages.js';

const PROTOCOL = 'sfu-room';
const params = new URLSearchParams(location.hash.slice(1));
const roomEl = /** @type {HTMLElement} */ (document.getElementById('room'));
const idle = /** @type {HTMLElement} */ (document.getElementById('idle'));
const nameInput = /** @type {HTMLInputElement} */ (document.getElementById('name'));
const idleNotice = /** @type {HTMLElement} */ (idle.querySelector('.notice'));
/** @type {any} */
const w = window;
w.demo = { client: null };

// The parent's real origin when the browser tells it (Chromium, Safari);
// otherwise the one the snippet passed. The server's frame-ancestors policy
// already limits who can frame this page at all.
const framed = window.parent !== window;
const parentOrigin = (location.ancestorOrigins && location.ancestorOrigins[0]) || params.get('parent') || '';

/** @param {string} type @param {Record<string, unknown>} [extra] */
function tell(type, extra = {}) {
  if (framed && parentOrigin) window.parent.postMessage({ protocol: PROTOCOL, type, ...extra }, parentOrigin);
}

let inCall = false;
/** @param {{ name?: string }} [opts] */
function join(opts = {}) {
  if (inCall) return;
  inCall = true;
  idle.hidden = true;
  roomEl.hidden = false;
  // No name: the server uses the token's.
  const name = opts.name || nameInput.value.trim() || params.get('name') || '';
  startCall(
    roomEl,
    { room: params.get('room') ?? '', name, mode: /** @type {any} */ (params.get('mode') || undefined), token: params.get('token') || undefined },
    {
      onClient: (client) => {
        w.demo.client = client;
        const count = () => tell('participants', { count: client.participants.size + 1 });
        client.on('joined', (j) => {
          tell('joined', { room: j.room, id: j.id, mode: j.mode, resumed: j.resumed });
          tell('media', client.localState());
          count();
        });
        client.on('participant-joined', count);
        client.on('participant-left', count);
        client.on('local-media', (m) => tell('media', m));
        client.on('error', (e) => tell('error', { code: e.code, message: describeError(e) }));
      },
      onEnd: (text) => {
        inCall = false;
        roomEl.hidden = true;
        idle.hidden = false;
        idleNotice.textContent = text;
        idleNotice.hidden = !text;
        tell('left', { room: params.get('room') });
      },
    },
  );
}

window.addEventListener('message', (e) => {
  if (!framed || e.source !== window.parent || e.origin !== parentOrigin) return;
  const m = e.data;
  if (!m || m.protocol !== PROTOCOL) return;
  const client = w.demo.client;
  if (m.type === 'join') join({ name: typeof m.name === 'string' ? m.name : undefined });
  else if (m.type === 'leave') client?.leave();
  else if (m.type === 'mute') client?.setMicrophone(!m.muted).catch(() => {});
  else if (m.type === 'camera') client?.setCamera(!!m.on).catch(() => {});
});

nameInput.value = params.get('name') ?? '';
document.getElementById('join')?.addEventListener('click', () => join());
if (params.get('autojoin') !== '0') join();
else idle.hidden = false;
tell('ready');
