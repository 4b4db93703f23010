// What to tell a person for each error code (server codes from
// signaling/src/error.rs, SDK codes from sdk/errors.js).

/** @type {Record<string, string>} */
const TEXT = {
  room_full: 'This room is full. Try again later or use another room.',
  token_required: 'This server needs an invitation link (an access token) to join.',
  token_invalid: 'The invitation link is not valid. Ask for a new one.',
  token_expired: 'The invitation link has expired. Ask for a new one.',
  token_wrong_room: 'The invitation link is for another room.',
  permission_denied: 'Your invitation does not allow this.',
  invalid_room: 'Room names may use letters, digits, dot, dash and underscore (up to 64).',
  mode_mismatch: 'This room already exists in the other mode (P2P or SFU).',
  media_unavailable: 'This server cannot host SFU rooms right now.',
  media_rejected: 'The server refused the media setup.',
  connection_lost: 'The connection to the server was lost.',
  negotiation_failed: 'Setting up the media connection failed.',
  media_in_use: 'The device is in use by another application.',
  media_not_found: 'No such device was found.',
};

/**
 * @param {{ code?: string, message?: string, source?: string }} err
 */
export function describeError(err) {
  if (err.code === 'media_permission_denied') {
    const what = err.source === 'screen' ? 'screen sharing' : `your ${err.source ?? 'camera or microphone'}`;
    return `Permission for ${what} was denied. Allow it in the browser's address bar (the camera icon) and try again; others can still see and hear you without it.`;
  }
  return TEXT[err.code ?? ''] ?? err.message ?? 'Something went wrong.';
}
