// Reading an access token's grants in the browser, before joining, to know
// whether to ask for the camera and microphone at all. The token is not
// verified here (the server does that at join); a token that cannot be read
// says nothing, and the server's `joined.permissions` stays the authority.

/**
 * The publish and subscribe grants a token carries (both default to true,
 * as on the server), or null when it is not a readable JWT.
 * @param {string | undefined | null} token
 * @returns {{ publish: boolean, subscribe: boolean } | null}
 */
export function tokenPermissions(token) {
  const part = typeof token === 'string' ? token.split('.')[1] : undefined;
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    const grants = claims && typeof claims.grants === 'object' && claims.grants ? claims.grants : {};
    return { publish: grants.publish !== false, subscribe: grants.subscribe !== false };
  } catch {
    return null;
  }
}
