//! A real `redis-server` on a free loopback port, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl RedisServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (child, ready) = Self::spawn(port, &dir);
        wait_ready(ready);
        RedisServer {
            child,
            port,
            _dir: TempDir(dir),
        }
    }

    /// Kills it (SIGKILL: no chance to save anything, and it saves nothing
    /// anyway) and starts a new, empty one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let (child, ready) = Self::spawn(self.port, &self._dir.0);
        self.child = child;
        wait_ready(ready);
    }

    /// Kills it with SIGKILL and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts `redis-server`; the receiver hears once it accepts
    /// connections (its log says so), and hangs up if it ends first.
    fn spawn(port: u16, dir: &std::path::Path) -> (Child, Receiver<()>) {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        let log = child.stdout.take().expect("piped stdout");
        let (tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, so the server never blocks on a full pipe.
            for line in BufReader::new(log).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        (child, ready)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most a generous 20 s) for the server's word that it accepts
/// connections.
fn wait_ready(ready: Receiver<()>) {
    if let Err(e) = ready.recv_timeout(Duration::from_secs(20)) {
        panic!("redis-server did not start: {e}");
    }
}
