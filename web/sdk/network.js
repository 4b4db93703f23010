// Network changes the browser can see: it came back online, or its
// connection type changed (Network Information API, e.g. Wi-Fi to
// cellular). After one, the paths of existing peer connections may be gone
// while ICE still reports them up for several seconds; the client restarts
// ICE at once instead of waiting for the connection to fail.

/**
 * Calls `fn` on every network change; returns the function that stops it.
 * @param {() => void} fn
 * @param {{ addEventListener?: Function, removeEventListener?: Function, navigator?: any }} [env]
 */
export function onNetworkChange(fn, env = /** @type {any} */ (globalThis)) {
  const handler = () => fn();
  const conn = env.navigator?.connection;
  env.addEventListener?.('online', handler);
  conn?.addEventListener?.('change', handler);
  return () => {
    env.removeEventListener?.('online', handler);
    conn?.removeEventListener?.('change', handler);
  };
}
