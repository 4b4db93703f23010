// Pages for the adaptive-media tests: a bare page that uses the SDK
// directly (no demo UI), shows every remote video in its own <video> of a
// size the test sets, and tells the server how it shows them
// (`client.attach`). Helpers read the numbers the tests compare from
// getStats(): what a subscriber receives, what a publisher sends per rid.

import { waitInPage, sleep } from './harness.mjs';

/**
 * Opens a participant on a bare SDK page and joins `room` (mode sfu).
 * @param {Awaited<ReturnType<typeof import('./harness.mjs').session>>} s
 * @param {{ room: string, name: string, camera?: boolean, publish?: Record<string, unknown>, tile?: { width: number, height: number }, viewport?: { width: number, height: number } }} o
 */
export async function sdkParticipant(s, o) {
  // The server's own page (same origin as /sdk/); it is replaced below.
  const page = await s.participant('/sdk/index.js', { name: o.name, viewport: o.viewport ?? { width: 1400, height: 900 } });
  return sdkJoin(page, o);
}

/**
 * Joins `room` from a page already open at the server's `/sdk/index.js`
 * (a browser the test launched itself, e.g. in another network namespace).
 * @param {import('playwright-core').Page} page
 * @param {{ room: string, name: string, camera?: boolean, publish?: Record<string, unknown>, tile?: { width: number, height: number }, attach?: boolean }} o
 */
export async function sdkJoin(page, o) {
  await page.evaluate(
    async ({ room, name, camera, publish, tile, attach }) => {
      const { RoomClient } = await import('/sdk/index.js');
      document.documentElement.innerHTML = '<head><title>t</title></head><body style="margin:0"></body>';
      const client = new RoomClient({ publish });
      const w = /** @type {any} */ (window);
      w.t = { client, tile, attach, events: [], streamStates: [] };
      client.on('publisher-encodings', (e) => w.t.events.push(e));
      client.on('stream-state', (e) =>
        w.t.streamStates.push({ participantId: e.participantId, trackId: e.trackId, paused: e.paused, reason: e.reason, track: e.track?.id ?? null, at: Date.now() }),
      );
      client.on('track-added', ({ participantId, track }) => {
        if (track.kind !== 'video') return;
        const v = document.createElement('video');
        v.autoplay = v.muted = v.playsInline = true;
        v.dataset.participant = participantId;
        v.style.cssText = `display:block;width:${w.t.tile.width}px;height:${w.t.tile.height}px;object-fit:cover`;
        v.srcObject = new MediaStream([track]);
        document.body.append(v);
        if (w.t.attach !== false) client.attach(track, v);
        v.play().catch(() => {});
      });
      if (camera) await client.setCamera(true);
      await client.join({ room, name, mode: 'sfu' });
    },
    { room: o.room, name: o.name, camera: o.camera ?? false, publish: o.publish ?? {}, tile: o.tile ?? { width: 320, height: 180 }, attach: o.attach ?? true },
  );
  const id = await waitInPage(page, () => window.t.client.id);
  return { page, id };
}

/**
 * Resizes (or hides, with `display: none`) every remote video of the page.
 * @param {import('playwright-core').Page} page
 * @param {{ width: number, height: number } | 'hidden'} size
 */
export async function setTiles(page, size) {
  await page.evaluate((sz) => {
    for (const v of document.querySelectorAll('video')) {
      if (sz === 'hidden') v.style.display = 'none';
      else {
        v.style.display = 'block';
        v.style.width = `${sz.width}px`;
        v.style.height = `${sz.height}px`;
      }
    }
  }, size);
}

/**
 * The page's inbound video: the largest decoded frame size and the sums
 * of bytes and frames over its streams.
 * @param {import('playwright-core').Page} page
 * @param {string} [clientExpr] an expression for the page's peer connections
 */
export async function inboundVideo(page, clientExpr = 'window.t.client.peerConnections()') {
  return page.evaluate(async (expr) => {
    const out = { frameWidth: 0, frameHeight: 0, bytes: 0, frames: 0, freezes: 0, codec: '' };
    for (const pc of eval(expr)) {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
        out.bytes += s.bytesReceived ?? 0;
        out.frames += s.framesDecoded ?? 0;
        out.freezes += s.freezeCount ?? 0;
        if ((s.frameWidth ?? 0) > out.frameWidth) {
          out.frameWidth = s.frameWidth;
          out.frameHeight = s.frameHeight ?? 0;
        }
        const c = report.get(s.codecId);
        if (c) out.codec = c.mimeType;
      });
    }
    return out;
  }, clientExpr);
}

/**
 * The page's outbound video per encoding (keyed by rid, `-` without one):
 * bytes sent, frame size, whether the encoding is active, scalability mode,
 * and what limits its quality (`cpu`, `bandwidth`, `none`).
 * @param {import('playwright-core').Page} page
 * @param {string} [clientExpr]
 */
export async function outboundVideo(page, clientExpr = 'window.t.client.peerConnections()') {
  return page.evaluate(async (expr) => {
    /** @type {Record<string, { bytes: number, frameWidth: number, active: boolean | null, mode: string, limit: string }>} */
    const out = {};
    for (const pc of eval(expr)) {
      (await pc.getStats()).forEach((s) => {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        out[s.rid ?? '-'] = { bytes: s.bytesSent ?? 0, frameWidth: s.frameWidth ?? 0, active: s.active ?? null, mode: s.scalabilityMode ?? '', limit: s.qualityLimitationReason ?? '' };
      });
    }
    return out;
  }, clientExpr);
}

/**
 * Polls `fn` until it returns a truthy value; returns it and how long it
 * took. Throws with the last value after `timeout` ms.
 * @template T
 * @param {() => Promise<T>} fn
 * @param {string} what
 * @param {number} [timeout]
 */
export async function until(fn, what, timeout = 60000) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeout) {
    last = await fn();
    if (last) return { value: last, ms: Date.now() - start };
    await sleep(250);
  }
  throw new Error(`${what}: not within ${timeout} ms (last: ${JSON.stringify(last)})`);
}

/**
 * Whether a counter stays still: two readings `gapMs` apart that differ by
 * at most `slack` (RTCP-free counters of media only: a stopped stream adds
 * nothing).
 * @param {() => Promise<number>} read
 * @param {number} gapMs
 * @param {number} [slack]
 */
export async function stays(read, gapMs, slack = 0) {
  const a = await read();
  await sleep(gapMs);
  const b = await read();
  return b - a <= slack ? { before: a, after: b } : null;
}

/**
 * Whether a counter grows by more than `by` within `gapMs`.
 * @param {() => Promise<number>} read
 * @param {number} gapMs
 * @param {number} [by]
 */
export async function grows(read, gapMs, by = 0) {
  const a = await read();
  await sleep(gapMs);
  const b = await read();
  return b - a > by ? { before: a, after: b } : null;
}
