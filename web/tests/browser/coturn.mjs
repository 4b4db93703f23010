// coturn for browser tests: a TURN server on loopback, started per test
// and killed when it ends.

import { spawn } from 'node:child_process';
import dgram from 'node:dgram';

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
 * Starts coturn on loopback (UDP and TCP on `port`, `use-auth-secret` with
 * `secret`); resolves once it answers STUN, with a function returning its log.
 * @param {import('node:test').TestContext} t
 * @param {number} port
 * @param {string} secret
 */
export async function startCoturn(t, port, secret) {
  const proc = spawn('turnserver', [
    '-n', '--no-cli', '--no-tls', '--no-dtls', '--log-file=stdout', '--simple-log',
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
