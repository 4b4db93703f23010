// Network set-ups for browser tests that change a participant's network:
// a veth interface with an address of its own, inside the private network
// namespace test.sh runs the browser tests in (`unshare -n`). Nothing here
// touches a network the test did not make: outside such a namespace the
// tests that need it skip themselves.

import { execFileSync, execSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS, sleep } from './harness.mjs';

/** @param {string[]} args */
function ip(...args) {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/**
 * Why the network cannot be changed here (null when it can): the tests
 * need a private namespace whose only interface is loopback, and root in it.
 */
export function privateNamespace() {
  let links;
  try {
    links = ip('-o', 'link', 'show');
  } catch {
    return 'the ip command (iproute2) is missing';
  }
  const names = links.split('\n').filter(Boolean).map((l) => l.split(':')[1].trim().split('@')[0]);
  if (names.some((n) => n !== 'lo' && !n.startsWith('vt'))) {
    return 'needs a private network namespace (test.sh runs the browser tests in unshare -n)';
  }
  return null;
}

/**
 * A veth pair `vt<name>0`/`vt<name>1`, both up, with `cidr` on the first
 * and no other address; deleted when the test ends.
 * @param {import('node:test').TestContext} t
 * @param {string} name a few letters
 * @param {string} cidr e.g. 10.99.7.1/24
 */
export function veth(t, name, cidr) {
  const a = `vt${name}0`;
  const b = `vt${name}1`;
  try {
    ip('link', 'del', a);
  } catch {
    // not left over from an earlier run
  }
  ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
  // No IPv6 link-local addresses: the kernel would add them a second or
  // two after the link comes up, and Chromium, seeing the network change
  // while a page loads, aborts its requests (ERR_NETWORK_CHANGED).
  for (const dev of [a, b]) {
    try {
      ip('link', 'set', dev, 'addrgenmode', 'none');
    } catch {
      // a kernel without it: the addresses come, and usually before a page loads
    }
  }
  ip('addr', 'add', cidr, 'dev', a);
  ip('link', 'set', a, 'up');
  ip('link', 'set', b, 'up');
  t.after(() => {
    try {
      ip('link', 'del', a);
    } catch {
      // gone already
    }
  });
  return {
    dev: a,
    /**
     * The address goes away and another comes up (a network change).
     * @param {string} from
     * @param {string} to
     */
    replaceAddress(from, to) {
      ip('addr', 'del', from, 'dev', a);
      ip('addr', 'add', to, 'dev', a);
    },
  };
}

/**
 * Launches Chromium in a new network namespace joined to ours by a veth
 * pair: ours `vbwe0` (`serverIp`), its `vbwe1` (`viewerIp`), with an htb
 * rate cap of `capKbit` on what we send it (change it with
 * {@link setCap}). The browser gets no loopback flag: it reaches the
 * server only over the veth. Closed, and the link deleted, when `t` ends.
 * @param {{ after: (fn: () => Promise<unknown>) => void }} t
 * @param {{ serverIp: string, viewerIp: string, capKbit: number, viewport?: { width: number, height: number } }} o
 */
export async function cappedBrowser(t, o) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bwe-'));
  const pidFile = path.join(dir, 'pid');
  const wrapper = path.join(dir, 'chromium-in-netns.sh');
  fs.writeFileSync(
    wrapper,
    `#!/bin/sh
exec unshare -n sh -c 'echo $$ > ${pidFile}; i=0; while ! ip link show vbwe1 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done
ip link set vbwe1 addrgenmode none 2>/dev/null; ip link set lo up; ip addr add ${o.viewerIp}/24 dev vbwe1; ip link set vbwe1 up
exec ${CHROMIUM} "$@"' sh "$@"
`,
    { mode: 0o755 },
  );
  const launching = chromium.launch({
    executablePath: wrapper,
    headless: true,
    // Not on loopback: no loopback flag, only its veth address.
    args: CHROMIUM_FLAGS.filter((f) => f !== '--allow-loopback-in-peer-connection'),
    timeout: 120000,
  });
  let pid = '';
  for (let i = 0; i < 600 && !pid; i++) {
    await sleep(100);
    pid = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : '';
  }
  assert.ok(pid, 'the capped browser namespace started');
  const sh = (c) => execSync(c, { stdio: 'pipe' }).toString();
  sh(`ip link add vbwe0 type veth peer name vbwe1 netns ${pid}`);
  // No IPv6 link-local addresses on either end (see `veth`): the other
  // browsers of the test, in this namespace, would see the network change
  // while their pages load and abort them (ERR_NETWORK_CHANGED).
  sh(`ip link set vbwe0 addrgenmode none 2>/dev/null || true`);
  sh(`ip addr add ${o.serverIp}/24 dev vbwe0 && ip link set vbwe0 up`);
  sh(`tc qdisc add dev vbwe0 root handle 1: htb default 10`);
  sh(`tc class add dev vbwe0 parent 1: classid 1:10 htb rate ${o.capKbit}kbit ceil ${o.capKbit}kbit`);
  const browser = await launching;
  t.after(async () => {
    await browser.close().catch(() => {});
    try {
      execFileSync('ip', ['link', 'del', 'vbwe0'], { stdio: 'ignore' });
    } catch {}
  });
  const page = await (await browser.newContext(o.viewport ? { viewport: o.viewport } : {})).newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  return { page, consoleLines };
}

/**
 * Changes the rate cap of a {@link cappedBrowser}'s downlink.
 * @param {number} kbit
 */
export function setCap(kbit) {
  execSync(`tc class change dev vbwe0 parent 1: classid 1:10 htb rate ${kbit}kbit ceil ${kbit}kbit`, { stdio: 'pipe' });
}
