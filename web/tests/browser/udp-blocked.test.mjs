// A participant on a network that drops all UDP (some corporate and hotel
// networks do) still gets media: over TCP to the media port itself (ICE
// over TCP, `[media] tcp`), or through TURN: the server hands out TURN
// credentials in `joined`, the SDK gives them to its peer connection, and
// Chromium relays through coturn over TCP, or over TLS where only `turns:`
// is handed out (port 443 is often the only way out). Chromium runs without loopback candidates, on a
// veth address in the test's private namespace, and nftables drops every
// UDP datagram to or from that address.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { session, waitInPage, waitForMediaFlow, RUN_SFU, hasMediaPlane } from './harness.mjs';
import { freeUdpPort, selfSignedCert, startCoturn } from './coturn.mjs';
import { privateNamespace, veth } from './netns.mjs';

const SECRET = 'udp-blocked-secret';
const ADDR = '10.99.8.1';
const TABLE = 'sfutest_noudp';

/** Why these tests cannot run here, or null. */
function cannotDropUdp() {
  if (!RUN_SFU) return 'SFU-room variants turned off (WEB_TEST_SFU=0)';
  const why = privateNamespace();
  if (why) return why;
  try {
    execFileSync('nft', ['--version']);
  } catch {
    return 'nft (nftables) is missing';
  }
  return null;
}

/** @param {string} script */
function nft(script) {
  return execFileSync('nft', ['-f', '-'], { input: script, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

/** Drops UDP to and from `addr`, counting what it drops. */
function dropUdp(t, addr) {
  nft(`table inet ${TABLE} {
  chain out { type filter hook output priority 0; ip saddr ${addr} meta l4proto udp counter drop; }
  chain in { type filter hook input priority 0; ip daddr ${addr} meta l4proto udp counter drop; }
}`);
  t.after(() => {
    try {
      execFileSync('nft', ['delete', 'table', 'inet', TABLE]);
    } catch {
      // gone already
    }
  });
  return () => {
    const out = execFileSync('nft', ['list', 'table', 'inet', TABLE]).toString();
    return [...out.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  };
}

/**
 * Alice's UDP is dropped; the server hands out `turnUrl` (coturn over TCP,
 * or over TLS with `tls`). Both participants get media, and Alice's
 * selected path is relayed over `relayProtocol`.
 */
async function relayedCall(t, { room, relayProtocol, tls }) {
  const why = cannotDropUdp();
  if (why) return t.skip(why);
  veth(t, 'ub', `${ADDR}/24`);
  const dropped = dropUdp(t, ADDR);
  const port = await freeUdpPort();
  const tlsPort = tls ? await freeUdpPort() : 0;
  const coturnLog = await startCoturn(t, port, SECRET, tls ? { port: tlsPort, ...selfSignedCert(t) } : undefined);

  const s = await session(t, {
    env: {
      // Only the one way in: TURN over TCP, or TURN over TLS.
      SFU_ICE__TURN__URLS: tls ? `turns:127.0.0.1:${tlsPort}?transport=tcp` : `turn:127.0.0.1:${port}?transport=tcp`,
      SFU_ICE__TURN__SECRET: SECRET,
      // No ICE over TCP to the media port: the relay is what is tested.
      SFU_MEDIA__TCP: 'false',
    },
  });
  const alice = await s.participant(`/?room=${room}&mode=sfu&name=Alice&autojoin=1`, {
    name: 'Alice (no UDP)',
    without: ['--allow-loopback-in-peer-connection'],
    // The relay's certificate is self-signed: a real deployment's is not.
    args: tls ? ['--ignore-certificate-errors'] : [],
  });
  if (!(await hasMediaPlane(alice))) return t.skip('the server has no SFU media plane');
  const bob = await s.participant(`/?room=${room}&mode=sfu&name=Bob&autojoin=1`, { name: 'Bob' });
  await waitInPage(alice, () => window.demo.client?.room && window.demo.client.id);
  await waitInPage(bob, () => window.demo.client?.room && window.demo.client.id);

  try {
    await waitForMediaFlow(alice);
    await waitForMediaFlow(bob);
  } catch (e) {
    throw new Error(`${e}\n---- coturn ----\n${coturnLog().slice(-3000)}`);
  }
  const local = await alice.evaluate(async () => {
    const [pc] = window.demo.client.peerConnections();
    const report = await pc.getStats();
    let cand = null;
    report.forEach((x) => {
      if (x.type === 'transport' && x.selectedCandidatePairId) {
        cand = report.get(report.get(x.selectedCandidatePairId)?.localCandidateId) ?? null;
      }
    });
    return cand && { type: cand.candidateType, relayProtocol: cand.relayProtocol, address: cand.address };
  });
  assert.equal(local?.type, 'relay', `Alice's path is relayed: ${JSON.stringify(local)}`);
  assert.equal(local?.relayProtocol, relayProtocol, `to the relay over ${relayProtocol}: ${JSON.stringify(local)}`);
  assert.ok(dropped() > 0, 'Alice did try UDP, and it was dropped');
  s.passed();
}

test('a participant whose UDP is dropped gets media through TURN over TCP (SFU room)', (t) =>
  relayedCall(t, { room: 'udp-blocked', relayProtocol: 'tcp', tls: false }));

test('a participant whose UDP is dropped gets media through TURN over TLS (SFU room)', (t) =>
  relayedCall(t, { room: 'udp-blocked-tls', relayProtocol: 'tls', tls: true }));

test('participants whose UDP is dropped get media over TCP to the media port (ICE over TCP, SFU room)', async (t) => {
  const why = cannotDropUdp();
  if (why) return t.skip(why);
  // The server is reached at a veth address whose UDP is dropped both
  // ways, and no TURN server is handed out: TCP to the media port is the
  // only way in, for both participants.
  const addr = '10.99.9.1';
  veth(t, 'ut', `${addr}/24`);
  const dropped = dropUdp(t, addr);
  const s = await session(t, {
    env: { SFU_MEDIA__BIND: '0.0.0.0', SFU_MEDIA__ADVERTISE: addr, SFU_MEDIA__TCP: 'true' },
  });
  const opts = { without: ['--allow-loopback-in-peer-connection'] };
  const alice = await s.participant('/?room=ice-tcp&mode=sfu&name=Alice&autojoin=1', { name: 'Alice', ...opts });
  if (!(await hasMediaPlane(alice))) return t.skip('the server has no SFU media plane');
  const bob = await s.participant('/?room=ice-tcp&mode=sfu&name=Bob&autojoin=1', { name: 'Bob', ...opts });
  await waitInPage(alice, () => window.demo.client?.room && window.demo.client.id);
  await waitInPage(bob, () => window.demo.client?.room && window.demo.client.id);
  await waitForMediaFlow(alice);
  await waitForMediaFlow(bob);
  for (const [name, page] of [
    ['Alice', alice],
    ['Bob', bob],
  ]) {
    const pair = await page.evaluate(async () => {
      const [pc] = window.demo.client.peerConnections();
      const report = await pc.getStats();
      let out = null;
      report.forEach((x) => {
        if (x.type === 'transport' && x.selectedCandidatePairId) {
          const p = report.get(x.selectedCandidatePairId);
          const l = report.get(p?.localCandidateId);
          const r = report.get(p?.remoteCandidateId);
          out = { local: l?.protocol, remote: r?.protocol, remoteType: r?.candidateType, tcpType: r?.tcpType };
        }
      });
      return out;
    });
    assert.equal(pair?.local, 'tcp', `${name}'s path is TCP: ${JSON.stringify(pair)}`);
    assert.equal(pair?.remoteType, 'host', `to the server's own port: ${JSON.stringify(pair)}`);
    t.diagnostic(`${name}'s selected pair: ${JSON.stringify(pair)}`);
  }
  assert.ok(dropped() > 0, 'UDP was tried, and dropped');
  s.passed();
});
