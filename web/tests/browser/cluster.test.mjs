// Issue 10: an SFU room that spans the nodes of a cluster. A real
// redis-server and three server processes on loopback, each with its own
// HTTP and UDP ports; at most one participant per node, so each browser
// lands on its own node and every track crosses a node-to-node relay.
// (1) Three browsers on three nodes decode each other's video and receive
// each other's audio. (2) `kill -9` of a participant's node: its SDK goes
// to a surviving node with its resume token, publishes and subscribes
// again, and the others see and hear it again; the dead node leaves the
// cluster's directory (the time from the kill to the first frame decoded
// again is printed, not asserted: see docs/benchmarks.md). (3) A page
// written against the plain browser API only, on one node, and the demo page
// on another decode each other through a relay. (4) A P2P room whose two
// members are on two nodes: offers, answers and candidates cross through
// Redis, media goes browser to browser, and no relay is opened. (5)
// SIGTERM to a node: its participant is told to move, takes its place on
// the other node without anyone seeing it leave, and the node exits with
// status 0 once it has gone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { session, startServer, hostPageServer, waitInPage, waitForMediaFlow, sleep } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MEMBER_PAGE = fs.readFileSync(path.join(here, 'fixtures/simulcast-member.html'), 'utf8');

/** A free TCP port on loopback. */
async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', () => r(undefined)));
  const port = /** @type {import('node:net').AddressInfo} */ (srv.address()).port;
  await new Promise((r) => srv.close(() => r(undefined)));
  return port;
}

/** A real redis-server on loopback, stopped with the test. */
async function startRedis(s) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  s.defer(async () => {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 20000;
  for (;;) {
    const up = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('redis-server did not start (apt-get install redis-server)');
    await sleep(50);
  }
  return `redis://127.0.0.1:${port}/`;
}

/** The cluster view one node gives. */
async function clusterView(url) {
  const r = await fetch(`${url}/api/cluster`);
  assert.equal(r.status, 200);
  return r.json();
}

/** Waits until `cond(view)` holds for the view `url` gives. */
async function waitForCluster(url, cond, what, timeout = 60000) {
  const deadline = Date.now() + timeout;
  let view = null;
  while (Date.now() < deadline) {
    view = await clusterView(url).catch(() => null);
    if (view && cond(view)) return view;
    await sleep(200);
  }
  throw new Error(`cluster never showed ${what}: ${JSON.stringify(view)}`);
}

/** Starts `n` nodes sharing one Redis, each in its own region, each taking one participant before the next goes elsewhere. */
async function startCluster(s, n) {
  const redis = await startRedis(s);
  const nodes = [];
  for (let i = 1; i <= n; i++) {
    const node = await startServer({
      env: {
        SFU_CLUSTER__REDIS: redis,
        SFU_CLUSTER__NODE_ID: `n${i}`,
        SFU_CLUSTER__REGION: `r${i}`,
        SFU_CLUSTER__MAX_PARTICIPANTS: '1',
        SFU_CLUSTER__SECRET: 'test-cluster-secret-0123456789',
        SFU_CLUSTER__HEARTBEAT: '250ms',
        SFU_CLUSTER__NODE_TTL: '2s',
      },
    });
    s.defer(node.stop);
    s.logs(`n${i}`, node.logs);
    nodes.push(node);
  }
  await waitForCluster(nodes[0].url, (v) => v.nodes.length === n, `${n} nodes`);
  return nodes;
}

/** Opens the demo page on `node` and waits until it is in the room. */
async function joinOn(s, node, room, name, mode = 'sfu') {
  const page = await s.participant(`${node.url}/?room=${room}&mode=${mode}&name=${name}&autojoin=1`, { name });
  const id = await waitInPage(page, () => window.demo.client?.room && window.demo.client.id);
  return { page, id };
}

/** Two nodes, and Alice (the demo page) in `room` on the first. */
async function twoNodesWithAlice(s, room, mode = 'sfu') {
  const nodes = await startCluster(s, 2);
  const alice = await joinOn(s, nodes[0], room, 'Alice', mode);
  await waitForCluster(nodes[0].url, (v) => v.nodes.find((n) => n.id === 'n1')?.load.participants === 1, 'n1 with Alice');
  return { nodes, alice };
}

/** Waits until `room` has two members, one on each node. */
async function oneOnEachNode(nodes, room) {
  const view = await waitForCluster(nodes[0].url, (v) => v.rooms.some((r) => r.room === room && r.participants === 2), 'the room with two');
  assert.deepEqual(roomNodes(view, room), { n1: 1, n2: 1 }, 'one member per node');
}

/** A node's media figures (`/api/stats`). */
async function mediaStats(node) {
  return (await (await fetch(`${node.url}/api/stats`)).json()).media;
}

/** Waits until `page` decodes video in the tile of each of `ids`. */
async function waitForTiles(page, ids, timeout = 60000) {
  for (const id of ids) {
    await waitInPage(page, (q) => document.querySelector(q)?.videoWidth > 0, `[data-participant="${id}"] video`, timeout);
  }
}

/** Where each member of `room` is, as the cluster's directory says: node id by count. */
function roomNodes(view, room) {
  const r = view.rooms.find((x) => x.room === room);
  return Object.fromEntries(r ? r.nodes : []);
}

test('an SFU room across three nodes: every browser decodes every other through relays', async (t) => {
  const s = await session(t, { server: false });
  const nodes = await startCluster(s, 3);
  const room = 'span3';
  const members = [];
  for (const [i, name] of ['Alice', 'Bob', 'Carol'].entries()) {
    members.push(await joinOn(s, nodes[i], room, name));
    // The next placement sees this node full (its load travels with its heartbeat).
    await waitForCluster(nodes[0].url, (v) => v.nodes.find((n) => n.id === `n${i + 1}`)?.load.participants === 1, `n${i + 1} with its participant`);
  }
  const view = await waitForCluster(nodes[0].url, (v) => v.rooms.some((r) => r.room === room && r.participants === 3), 'the room with three');
  assert.deepEqual(roomNodes(view, room), { n1: 1, n2: 1, n3: 1 }, 'one participant per node');

  for (const [i, m] of members.entries()) {
    const others = members.filter((_, j) => j !== i).map((o) => o.id);
    await waitForTiles(m.page, others);
    const media = await waitForMediaFlow(m.page);
    assert.equal(media.states.length, 1, 'one connection, to its own node');
  }
  // Simulcast crosses as simulcast: on each node the local subscriber gets
  // a stream of each remote camera by its rid, chosen there among the
  // streams the relays carry, and each relay carries the streams of the
  // local camera that the far node's subscribers take (dynacast across
  // nodes; `q+h` for two).
  for (const node of nodes) {
    const deadline = Date.now() + 60000;
    let cams = [];
    let relayed = [];
    for (;;) {
      const m = await mediaStats(node);
      const relay = (x) => x.participant.startsWith('relay~');
      const video = (list) => list.flatMap((x) => x.tracks).filter((x) => x.kind === 'video');
      cams = video((m.subscribers ?? []).filter((x) => !relay(x)));
      relayed = video((m.subscribers ?? []).filter(relay)).map((x) => x.layer);
      const rid = (c) => (c.layer ?? '').split('.')[0];
      const chosen = (c) => ['q', 'h', 'f'].includes(rid(c)) && (c.publisherLayers ?? []).includes(rid(c));
      if (cams.length === 2 && cams.every(chosen) && relayed.length === 2 && relayed.every((l) => l)) break;
      assert.ok(Date.now() < deadline, `${node.url}: relayed cameras with their layers: ${JSON.stringify(m.subscribers)}`);
      await sleep(250);
    }
    console.log(`${node.url}: gets ${cams.map((c) => `${c.layer} of ${c.publisherLayers.join('/')}`).join(', ')}; sends over relays ${relayed.join(', ')}`);
  }
  // Every node relays: its own tracks out, the others' in.
  for (const node of nodes) {
    const stats = await (await fetch(`${node.url}/api/stats`)).json();
    const m = stats.media;
    assert.equal(m.relays, 2, `${node.url}: a relay to each other node`);
    assert.ok(m.relay_packets_out > 0 && m.relay_packets_in > 0, JSON.stringify(m));
    assert.equal(m.connections, 1, 'relays are not participants');
  }
  s.passed();
});

test('kill -9 of a node: its participant comes back on another node and the room goes on', async (t) => {
  const s = await session(t, { server: false });
  const nodes = await startCluster(s, 2);
  const room = 'survive';
  const alice = await joinOn(s, nodes[0], room, 'Alice');
  await waitForCluster(nodes[0].url, (v) => v.nodes.find((n) => n.id === 'n1')?.load.participants === 1, 'n1 with Alice');
  // Bob's SDK knows both nodes, his own first.
  const bobPage = await s.participant(`${nodes[1].url}/healthz`, { name: 'Bob' });
  const bobId = await bobPage.evaluate(async (urls) => {
    const { RoomClient } = await import('/sdk/index.js');
    const client = new RoomClient({ url: urls });
    window.bob = client;
    window.changes = [];
    client.on('node-changed', (e) => window.changes.push(e));
    await Promise.all([client.setCamera(true), client.setMicrophone(true)]);
    const j = await client.join({ room: 'survive', name: 'Bob', mode: 'sfu' });
    return j.id;
  }, nodes.map((n) => n.url.replace('http://', 'ws://') + '/ws'));
  const view = await waitForCluster(nodes[0].url, (v) => v.rooms.some((r) => r.room === room && r.participants === 2), 'the room with two');
  assert.deepEqual(roomNodes(view, room), { n1: 1, n2: 1 });
  await waitForTiles(alice.page, [bobId]);
  await waitForMediaFlow(alice.page);
  await waitForMediaFlow(bobPage, { clientExpr: 'window.bob' });
  await alice.page.evaluate(() => {
    window.seen = [];
    window.demo.client.on('participant-left', (e) => window.seen.push(`left:${e.id}`));
    window.demo.client.on('participant-joined', (e) => window.seen.push(`joined:${e.participant.id}`));
  });

  // Bob's node dies without a word.
  const killedAt = Date.now();
  await nodes[1].kill('SIGKILL');
  await waitInPage(bobPage, () => window.changes.some((c) => c.node === 'n1'));
  const back = await waitForMediaFlow(bobPage, { clientExpr: 'window.bob' });
  console.log(`kill -9 to Bob decoding again on n1: ${Date.now() - killedAt} ms`);
  assert.ok(back.video.framesDecoded > 0);
  assert.equal(await bobPage.evaluate(() => window.bob.id), bobId, 'Bob took his place back');
  // Alice sees Bob again, with media.
  await waitForTiles(alice.page, [bobId]);
  await waitForMediaFlow(alice.page);
  // The dead node leaves the directory when its entry expires.
  const after = await waitForCluster(nodes[0].url, (v) => v.nodes.length === 1, 'n2 gone');
  assert.deepEqual(after.nodes.map((n) => n.id), ['n1']);
  assert.deepEqual(roomNodes(after, room), { n1: 2 });
  const stats = await (await fetch(`${nodes[0].url}/api/stats`)).json();
  assert.equal(stats.media.relays, 0, 'the room no longer spans nodes: its relay is gone');
  s.passed();
});

test('a plain-API page on one node and the demo page on another decode each other through a relay', async (t) => {
  const s = await session(t, { server: false });
  const room = 'plain2';
  const { nodes, alice } = await twoNodesWithAlice(s, room);
  // The page connects to the second node's /ws itself: no SDK, no redirect.
  const host = await hostPageServer(() => MEMBER_PAGE);
  t.after(host.close);
  const ws = `${nodes[1].url.replace('http://', 'ws://')}/ws`;
  const plain = await s.participant(`${host.origin}/?ws=${encodeURIComponent(ws)}&room=${room}&name=Plain&publish=1`, { name: 'Plain' });
  const plainId = await waitInPage(plain, () => window.member.id);
  await oneOnEachNode(nodes, room);

  await waitForTiles(alice.page, [plainId], 90000);
  await waitForMediaFlow(alice.page);
  await waitInPage(plain, async () => (await window.member.inbound()).video.some((v) => v.framesDecoded > 0), undefined, 90000);
  await waitInPage(plain, async () => (await window.member.inbound()).audio.some((a) => a.totalSamplesReceived > 0), undefined, 60000);
  const heard = await plain.evaluate(async () => (await window.member.inbound()).audio);
  assert.ok(heard.some((a) => a.packetsReceived > 0), `the plain page hears Alice: ${JSON.stringify(heard)}`);
  for (const node of nodes) {
    const m = await mediaStats(node);
    assert.equal(m.relays, 1, `${node.url}: one relay, to the other node`);
    assert.ok(m.relay_packets_out > 0 && m.relay_packets_in > 0, JSON.stringify(m));
  }
  s.passed();
});

test('a P2P room across two nodes: signaling crosses through Redis, media goes browser to browser', async (t) => {
  const s = await session(t, { server: false });
  const room = 'p2p2';
  const { nodes, alice } = await twoNodesWithAlice(s, room, 'p2p');
  const bob = await joinOn(s, nodes[1], room, 'Bob', 'p2p');
  await oneOnEachNode(nodes, room);

  for (const [m, other] of [[alice, bob], [bob, alice]]) {
    await waitForTiles(m.page, [other.id], 90000);
    const media = await waitForMediaFlow(m.page);
    assert.equal(media.states.length, 1, 'one peer connection, to the other browser');
  }
  for (const node of nodes) {
    const m = await mediaStats(node);
    assert.equal(m.relays, 0, 'a P2P room opens no relay');
    assert.equal(m.connections, 0, 'and no media connection to the server');
  }
  s.passed();
});

test('SIGTERM to a node: its participant moves to another node unseen, and the node exits cleanly', async (t) => {
  const s = await session(t, { server: false });
  const room = 'drain';
  const { nodes, alice } = await twoNodesWithAlice(s, room);
  const bob = await joinOn(s, nodes[1], room, 'Bob');
  await oneOnEachNode(nodes, room);
  await waitForTiles(alice.page, [bob.id]);
  await waitForTiles(bob.page, [alice.id]);
  await alice.page.evaluate(() => {
    window.seen = [];
    window.demo.client.on('participant-left', (e) => window.seen.push(`left:${e.id}`));
  });
  await bob.page.evaluate(() => {
    window.changes = [];
    window.demo.client.on('node-changed', (e) => window.changes.push(e));
  });

  const termAt = Date.now();
  const exiting = nodes[1].kill('SIGTERM');
  const change = await waitInPage(bob.page, () => window.changes.find((c) => c.reason === 'move'), undefined, 60000);
  assert.equal(change.node, 'n1', 'told to move to the other node');
  assert.equal(await exiting, 0, 'the drained node exits with status 0');
  assert.equal(await bob.page.evaluate(() => window.demo.client.id), bob.id, 'Bob kept his place');
  // Media again both ways, now through n1 alone.
  const back = await waitForMediaFlow(bob.page);
  assert.ok(back.video.framesDecoded > 0);
  console.log(`SIGTERM to Bob decoding again on n1: ${Date.now() - termAt} ms`);
  await waitForTiles(alice.page, [bob.id]);
  await waitForMediaFlow(alice.page);
  assert.deepEqual(await alice.page.evaluate(() => window.seen), [], 'nobody saw Bob leave');
  const after = await waitForCluster(nodes[0].url, (v) => v.nodes.length === 1, 'n2 gone');
  assert.deepEqual(roomNodes(after, room), { n1: 2 });
  s.passed();
});
