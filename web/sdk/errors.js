// Errors the SDK reports: the server's codes (signaling/src/error.rs) plus a
// few of its own for things that happen in the browser.

/**
 * Codes the SDK adds to the server's:
 * - `media_permission_denied`: the user or browser refused camera/microphone/screen.
 * - `media_not_found`: no such device.
 * - `media_in_use`: the device is busy in another application.
 * - `media_failed`: any other getUserMedia/getDisplayMedia failure.
 * - `connection_lost`: the signaling socket dropped and could not resume.
 * - `negotiation_failed`: applying an SDP or candidate failed.
 * - `not_connected`: a call needs a room and there is none.
 */
export class SdkError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ request?: string, source?: string, cause?: unknown }} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'SdkError';
    this.code = code;
    this.request = extra.request;
    this.source = extra.source;
    this.cause = extra.cause;
  }
}

/**
 * Turns a getUserMedia/getDisplayMedia rejection into an SdkError.
 * @param {unknown} e
 * @param {string} source microphone | camera | screen
 */
export function mediaError(e, source) {
  const name = /** @type {any} */ (e)?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return new SdkError('media_permission_denied', `Permission to use the ${source} was denied.`, { source, cause: e });
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return new SdkError('media_not_found', `No ${source} was found.`, { source, cause: e });
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return new SdkError('media_in_use', `The ${source} is in use by another application.`, { source, cause: e });
  }
  return new SdkError('media_failed', `Could not start the ${source}: ${/** @type {any} */ (e)?.message ?? e}`, { source, cause: e });
}
