// Network set-ups for browser tests that change a participant's network:
// a veth interface with an address of its own, inside the private network
// namespace test.sh runs the browser tests in (`unshare -n`). Nothing here
// touches a network the test did not make: outside such a namespace the
// tests that need it skip themselves.

import { execFileSync } from 'node:child_process';

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
