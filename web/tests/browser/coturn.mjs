// coturn for browser tests: a TURN server on loopback, started per test
// and killed when it ends.

import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A free UDP port on 127.0.0.1 (bound, then released for coturn). */
export async function freeUdpPort() {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', () => r(undefined)));
  const { port } = sock.address();
  await new Promise((r) => sock.close(() => r(undefined)));
  return port;
}

/** Whether a STUN binding request to 127.0.0.1:port is answered within 300 ms. */
async function stunAnswers(port) {
  const sock = dgram.createSocket('udp4');
  const req = Buffer.alloc(20);
  req.writeUInt16BE(0x0001, 0); // binding request, no attributes
  req.writeUInt32BE(0x2112a442, 4); // magic cookie
  for (let i = 8; i < 20; i++) req[i] = i;
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 300);
      sock.on('message', (m) => { clearTimeout(timer); resolve(m.readUInt16BE(0) === 0x0101); });
      sock.send(req, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

/**
 * A self-signed certificate and key for 127.0.0.1 (openssl), in a temporary
 * directory removed when the test ends.
 * @param {import('node:test').TestContext} t
 */
export function selfSignedCert(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turn-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', key, '-out', cert,
  ], { stdio: 'pipe' });
  return { cert, key };
}

/**
 * Starts coturn on loopback (UDP and TCP on `port`, `use-auth-secret` with
 * `secret`; with `tls`, TURN over TLS on `tls.port` too); resolves once it
 * answers STUN, with a function returning its log.
 * @param {import('node:test').TestContext} t
 * @param {number} port
 * @param {string} secret
 * @param {{ port: number, cert: string, key: string }} [tls]
 */
export async function startCoturn(t, port, secret, tls) {
  const tlsArgs = tls
    ? [`--tls-listening-port=${tls.port}`, `--cert=${tls.cert}`, `--pkey=${tls.key}`]
    : ['--no-tls'];
  const proc = spawn('turnserver', [
    '-n', '--no-cli', ...tlsArgs, '--no-dtls', '--log-file=stdout', '--simple-log',
    '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    '--min-port=49152', '--max-port=49400', '--allow-loopback-peers',
    '--realm=sfu.test', '--use-auth-secret', `--static-auth-secret=${secret}`,
    '--fingerprint', `--pidfile=/tmp/turnserver-${port}.pid`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (b) => { log += b; });
  proc.stderr.on('data', (b) => { log += b; });
  t.after(() => proc.kill('SIGKILL'));
  const deadline = Date.now() + 60000;
  while (!(await stunAnswers(port))) {
    if (proc.exitCode !== null) throw new Error(`coturn exited:\n${log}`);
    if (Date.now() > deadline) throw new Error(`coturn did not answer STUN:\n${log}`);
  }
  return () => log;
}
