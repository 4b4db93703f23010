// Shared harness for the real-browser tests: starts the server binary on
// ephemeral ports, launches one headless Chromium process per participant,
// and tears everything down at the end of the test, even when it fails.
//
//   import { session } from './harness.mjs';
//   test('call', async (t) => {
//     const s = await session(t);                    // server + cleanup hooks
//     const a = await s.participant('/?room=r&name=A&autojoin=1');
//     await waitForVideo(a, 1);
//   });

import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The server binary: $SFU_BIN, else the release build in the repository. */
export const SFU_BIN = process.env.SFU_BIN ?? path.join(repo, 'target/release/sfu');
/** Chromium: $CHROMIUM, else the Debian package's. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Flags from /work/shared/browser-testing.md (a fresh profile is made by Playwright). */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--auto-select-desktop-capture-source=Entire screen',
];

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * The environment for the server binary. Only SFU_<SECTION>__<KEY>
 * variables are configuration; SFU_BIN (set by test.sh) would be read as an
 * unknown key, so no outside SFU_ variable is passed on.
 */
function inheritedEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SFU_')));
}

/**
 * Mints an access token with `$SFU_BIN token create` (the server must be
 * started with the same `SFU_AUTH__KEYS__*` env).
 * @param {Record<string, string>} env
 * @param {{ room: string, identity: string, name?: string, mode?: 'p2p'|'sfu', publish?: boolean }} o
 *   publish: false for a view-only token (no publish grant)
 */
export function mintToken(env, o) {
  const args = ['token', 'create', '--room', o.room, '--identity', o.identity];
  if (o.name) args.push('--name', o.name);
  if (o.mode) args.push('--mode', o.mode);
  if (o.publish === false) args.push('--no-publish');
  return execFileSync(SFU_BIN, args, { env: { ...inheritedEnv(), ...env } }).toString().trim();
}

/**
 * A tiny HTTP server on 127.0.0.1 (another origin than the server under
 * test) that answers every GET with `html(path)`.
 * @param {(path: string) => string} html
 * @returns {Promise<{ origin: string, port: number, close: () => Promise<void> }>}
 */
export async function hostPageServer(html) {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html(req.url ?? '/'));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', () => r(undefined)));
  const port = /** @type {import('node:net').AddressInfo} */ (srv.address()).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(() => r(undefined)); }),
  };
}

/**
 * Starts `$SFU_BIN` on 127.0.0.1 with ephemeral HTTP and UDP ports.
 * @param {{ env?: Record<string, string>, args?: string[] }} [opts]
 * @returns {Promise<{ url: string, port: number, logs: () => string, stop: () => Promise<void>, kill: (signal: NodeJS.Signals) => Promise<number | null> }>}
 */
export async function startServer(opts = {}) {
  if (!fs.existsSync(SFU_BIN)) throw new Error(`server binary not found: ${SFU_BIN} (build it or set SFU_BIN)`);
  const env = {
    ...inheritedEnv(),
    SFU_SERVER__LISTEN: '127.0.0.1:0',
    SFU_MEDIA__UDP_PORT: '0',
    NO_COLOR: '1',
    ...opts.env,
  };
  const proc = spawn(SFU_BIN, opts.args ?? [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const collect = (/** @type {Buffer} */ b) => {
    log += b.toString().replace(ANSI, '');
  };
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not report its port in 60 s:\n${log}`)), 60000);
    const check = () => {
      // Any address: a test may listen on 0.0.0.0 to be reachable from another namespace.
      const m = /listening on http:\/\/[0-9.]+:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        proc.stdout.off('data', check);
        proc.stderr.off('data', check);
        resolve(Number(m[1]));
      }
    };
    proc.stdout.on('data', check);
    proc.stderr.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${log}`));
    });
  });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  /** Sends `signal` (e.g. SIGKILL, to see a node die) and waits until it exits; resolves with its exit code (null when the signal killed it). */
  const kill = async (/** @type {NodeJS.Signals} */ signal) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    proc.kill(signal);
    return exited;
  };
  return { url: `http://127.0.0.1:${port}`, port, logs: () => log, stop, kill };
}

/**
 * Launches one Chromium process with its own profile and returns a page.
 * `without` drops default flags (e.g. the fake permission UI, to see a denial).
 * @param {{ args?: string[], without?: string[], viewport?: { width: number, height: number } }} [opts]
 */
export async function launchBrowser(opts = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS.filter((f) => !opts.without?.includes(f)), ...(opts.args ?? [])],
    timeout: 60000,
  });
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 960, height: 600 } });
  const page = await context.newPage();
  /** @type {string[]} */
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  return { browser, context, page, console: consoleLines, close: () => browser.close().catch(() => {}) };
}

/**
 * A test session: a server plus browsers, all stopped when the test ends
 * (pass or fail). On failure the server log and page consoles are printed.
 * @param {import('node:test').TestContext} t
 * @param {{ env?: Record<string, string>, server?: boolean }} [opts]
 */
export async function session(t, opts = {}) {
  /** @type {(() => Promise<unknown>)[]} */
  const cleanups = [];
  /** @type {{ name: string, console: string[] }[]} */
  const pages = [];
  let server = null;
  /** @type {{ name: string, logs: () => string }[]} */
  const moreLogs = [];
  let failed = true;
  t.after(async () => {
    if (failed) {
      if (server) console.error(`---- server log ----\n${server.logs().slice(-6000)}`);
      for (const l of moreLogs) console.error(`---- log of ${l.name} ----\n${l.logs().slice(-6000)}`);
      for (const p of pages) console.error(`---- console of ${p.name} ----\n${p.console.slice(-60).join('\n')}`);
    }
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });
  if (opts.server !== false) {
    server = await startServer({ env: opts.env });
    cleanups.push(server.stop);
  }
  return {
    server,
    /** Call when every assertion passed (keeps the logs quiet). */
    passed() {
      failed = false;
    },
    /** @param {() => Promise<unknown>} fn */
    defer(fn) {
      cleanups.push(fn);
    },
    /** Another server's log, printed when the test fails. @param {string} name @param {() => string} logs */
    logs(name, logs) {
      moreLogs.push({ name, logs });
    },
    /**
     * A new Chromium process opened at `urlOrPath` (relative to the server).
     * @param {string} urlOrPath
     * @param {{ args?: string[], without?: string[], viewport?: { width: number, height: number }, name?: string }} [o]
     */
    async participant(urlOrPath, o = {}) {
      const b = await launchBrowser(o);
      cleanups.push(b.close);
      pages.push({ name: o.name ?? urlOrPath, console: b.console });
      const url = /^https?:/.test(urlOrPath) ? urlOrPath : `${server?.url}${urlOrPath}`;
      // Not "load": a busy machine may hold that back; the tests wait for what they need.
      await b.page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60000 });
      return b.page;
    },
  };
}

/**
 * Polls `fn` in the page until it returns a truthy value.
 * @template T
 * @param {import('playwright-core').Page} page
 * @param {(arg: T) => any} fn
 * @param {T} [arg]
 * @param {number} [timeout]
 */
export async function waitInPage(page, fn, arg, timeout = 60000) {
  const handle = await page.waitForFunction(fn, arg, { timeout, polling: 250 });
  return handle.jsonValue();
}

/**
 * Inbound RTP counters over every peer connection of the page's SDK client
 * (`window.demo.client`, or the `clientExpr` given).
 * @param {import('playwright-core').Page} page
 * @param {string} [clientExpr]
 */
export async function inbound(page, clientExpr = 'window.demo.client') {
  return page.evaluate(async (expr) => {
    const client = eval(expr);
    const out = { video: { framesDecoded: 0, packetsReceived: 0, frameWidth: 0 }, audio: { packetsReceived: 0 }, states: [] };
    for (const pc of client ? client.peerConnections() : []) {
      out.states.push(pc.connectionState);
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') {
          out.video.framesDecoded += s.framesDecoded ?? 0;
          out.video.packetsReceived += s.packetsReceived ?? 0;
          out.video.frameWidth = Math.max(out.video.frameWidth, s.frameWidth ?? 0);
        } else if (s.kind === 'audio') out.audio.packetsReceived += s.packetsReceived ?? 0;
      });
    }
    return out;
  }, clientExpr);
}

/**
 * Waits until video frames are being decoded and audio packets arrive, and
 * both counters keep rising.
 * @param {import('playwright-core').Page} page
 * @param {{ audio?: boolean, clientExpr?: string, timeout?: number }} [opts]
 */
export async function waitForMediaFlow(page, opts = {}) {
  const { audio = true, clientExpr, timeout = 60000 } = opts;
  const deadline = Date.now() + timeout;
  let first = null;
  let last = null;
  while (Date.now() < deadline) {
    last = await inbound(page, clientExpr);
    const flowing = last.video.framesDecoded > 0 && (!audio || last.audio.packetsReceived > 0);
    if (flowing && !first) first = last;
    if (
      first &&
      last.video.framesDecoded > first.video.framesDecoded + 5 &&
      (!audio || last.audio.packetsReceived > first.audio.packetsReceived + 5)
    ) {
      return last;
    }
    await sleep(300);
  }
  throw new Error(`media did not flow within ${timeout} ms: ${JSON.stringify(last)}`);
}

/** @param {number} ms */
export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Whether a `<video>` element shows a non-black picture: draws it on a
 * canvas and counts bright pixels (the fake camera draws a green frame).
 * @param {import('playwright-core').Page} page
 * @param {string} selector
 */
export async function videoHasPicture(page, selector) {
  return page.evaluate((sel) => {
    const v = /** @type {HTMLVideoElement|null} */ (document.querySelector(sel));
    if (!v || !v.videoWidth) return false;
    const c = document.createElement('canvas');
    c.width = 64;
    c.height = 36;
    const g = c.getContext('2d');
    if (!g) return false;
    g.drawImage(v, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let bright = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) bright++;
    return bright > 50;
  }, selector);
}

/**
 * Whether the server hosts SFU rooms (has a media plane): a throwaway join
 * in mode `sfu` from the page, answered by `joined` or `media_unavailable`.
 * With API keys configured, pass a token for `room`.
 * @param {import('playwright-core').Page} page any page served by the server
 * @param {{ room?: string, token?: string }} [o]
 */
export async function hasMediaPlane(page, o = {}) {
  const answer = await page.evaluate(
    ({ server, room, token }) =>
      new Promise((resolve) => {
        const ws = new WebSocket(`ws://${server}/ws`);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room, mode: 'sfu', token }));
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === 'joined' || m.type === 'error') {
            ws.close();
            resolve(m.type === 'joined' ? 'joined' : m.code);
          }
        };
        ws.onerror = () => resolve('socket_error');
      }),
    { server: new URL(page.url()).host, room: o.room ?? `probe-${Math.random().toString(36).slice(2)}`, token: o.token },
  );
  if (answer !== 'joined' && answer !== 'media_unavailable') throw new Error(`media-plane probe failed: ${answer}`);
  return answer === 'joined';
}

/**
 * Whether to run the SFU-room variants of the browser tests (default yes;
 * WEB_TEST_SFU=0 turns them off, and they skip themselves when the server
 * has no media plane).
 */
export const RUN_SFU = process.env.WEB_TEST_SFU !== '0';

/**
 * Opens the demo page for each name in one room and waits until everyone
 * has joined. Skips the test (returns null) for mode `sfu` unless RUN_SFU,
 * or when the server has no media plane.
 * @param {import('node:test').TestContext} t
 * @param {Awaited<ReturnType<typeof session>>} s
 * @param {{ room: string, mode: 'p2p'|'sfu', names: string[], viewport?: { width: number, height: number } }} o
 */
export async function joinDemo(t, s, o) {
  const pages = [];
  for (const name of o.names) {
    const page = await s.participant(`/?room=${o.room}&mode=${o.mode}&name=${name}&autojoin=1`, { name, viewport: o.viewport });
    if (o.mode === 'sfu' && !RUN_SFU) {
      t.skip('SFU-room variants turned off (WEB_TEST_SFU=0)');
      return null;
    }
    if (pages.length === 0 && o.mode === 'sfu' && !(await hasMediaPlane(page))) {
      t.skip('the server has no SFU media plane');
      return null;
    }
    pages.push(page);
  }
  const ids = [];
  for (const p of pages) ids.push(await waitInPage(p, () => window.demo.client?.room && window.demo.client.id));
  return { pages, ids };
}

/**
 * The host page of an embedded room: the copy-paste snippet, a log of the
 * `sfu-room:*` events in `window.events`, and `window.loaded` set by the
 * page's own `load` event.
 * @param {{ server: string, room: string, token: string, height?: string }} o
 */
export function embedHostPage(o) {
  return `<!doctype html>
<title>Host</title>
<h1>Our intranet</h1>
<div id="room"></div>
<script>
  window.events = [];
  window.loaded = false;
  addEventListener('load', () => { window.loaded = true; });
  for (const type of ['ready', 'joined', 'left', 'participants', 'media', 'error']) {
    document.getElementById('room').addEventListener('sfu-room:' + type, (e) => window.events.push(e.detail));
  }
</script>
<script src="${o.server}/embed.js" data-room="${o.room}" data-token="${o.token}" data-target="#room" data-height="${o.height ?? '400px'}" async></script>`;
}

/**
 * The frame of the room a host page embeds, once it exists.
 * @param {import('playwright-core').Page} page
 */
export async function embedFrame(page) {
  await waitInPage(page, () => document.querySelector('#room iframe') !== null);
  for (let i = 0; i < 300; i++) {
    const f = page.frames().find((fr) => fr.url().includes('/embed/room.html'));
    if (f) return f;
    await sleep(100);
  }
  throw new Error('no room frame');
}
