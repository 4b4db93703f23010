// Starts a call in a page element: a RoomClient, the room view, local media,
// and the join (falling back to a P2P room when the server has no SFU and
// no mode was asked for). Used by the demo page and the embedded room.

import { RoomClient, tokenPermissions } from '/sdk/index.js';
import { mountRoom } from './room-ui.js';
import { describeError } from './messages.js';

/**
 * @param {HTMLElement} root
 * @param {{ room: string, name: string, mode?: 'p2p'|'sfu', token?: string, shareLink?: (room: string, client: RoomClient) => string }} opts
 * @param {{ onEnd: (text: string) => void, onClient?: (client: RoomClient) => void }} hooks
 *   onEnd: the call is over (hung up or refused), with what to tell the person
 */
export async function startCall(root, opts, hooks) {
  const client = new RoomClient();
  hooks.onClient?.(client);
  // A token without the publish grant makes a viewer: no device is asked
  // for at all. (Without a token, or one that cannot be read, the server's
  // `joined.permissions` decides, and the SDK stops what it may not send.)
  const viewer = tokenPermissions(opts.token)?.publish === false;
  let ended = false;
  const end = (/** @type {string} */ text) => {
    if (ended) return;
    ended = true;
    ui.destroy();
    hooks.onEnd(text);
  };
  const ui = mountRoom(root, client, {
    name: opts.name,
    viewer,
    shareLink: opts.shareLink && ((r) => /** @type {any} */ (opts.shareLink)(r, client)),
    onHangup: () => end('You left the room.'),
  });
  /** @type {any} */
  let refused = null;
  client.on('error', (e) => {
    if (e.request === 'join') refused = e; // e.g. a re-join after a drop refused
  });
  client.on('left', () => end(refused ? describeError(refused) : 'You left the room.'));
  // Media first, so the first offer carries it; a refusal is reported by the
  // room view and the call goes on without that source.
  if (!viewer) await Promise.allSettled([client.setMicrophone(true), client.setCamera(true)]);
  const join = (/** @type {'p2p'|'sfu'|undefined} */ mode) => client.join({ room: opts.room, name: opts.name, mode, token: opts.token });
  try {
    try {
      await join(opts.mode);
    } catch (e) {
      if (/** @type {any} */ (e).code !== 'media_unavailable' || opts.mode) throw e;
      // No media plane on this server: run the room browser to browser.
      await join('p2p');
      ui.notify('This server has no SFU right now: the room runs peer to peer.', 'info');
    }
  } catch (e) {
    client.local.stopAll();
    end(describeError(/** @type {any} */ (e)));
  }
  return { client, ui };
}
