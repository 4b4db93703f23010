//! Starts the server binary on loopback with ephemeral ports, for
//! `--spawn-server`, and stops it when dropped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// A running server; killed on drop.
pub struct Server {
    pub http: SocketAddr,
    child: Child,
    pub log_tail: Arc<Mutex<VecDeque<String>>>,
}

/// When and how long to stop a spawned server (`--stall-server`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// From the server's start to the first stop.
    pub after: Duration,
    /// Each stop's length.
    pub length: Duration,
    /// Stops in all, each `every` after the one before.
    pub count: u32,
    pub every: Duration,
}

impl Stall {
    /// `AFTER:LENGTH`, or `AFTER:LENGTHxCOUNT/EVERY` for repeated stops,
    /// e.g. `8s:1500ms` or `3s:600msx8/1s`.
    pub fn parse(s: &str) -> Result<Stall, String> {
        let duration = crate::parse_duration;
        let bad =
            || format!("`{s}` is not AFTER:LENGTH[xCOUNT/EVERY] like 8s:1500ms or 3s:600msx8/1s");
        let (after, rest) = s.split_once(':').ok_or_else(bad)?;
        let (length, count, every) = match rest.split_once('x') {
            Some((length, repeat)) => {
                let (count, every) = repeat.split_once('/').ok_or_else(bad)?;
                let count: u32 = count.parse().map_err(|_| bad())?;
                (length, count.max(1), duration(every)?)
            }
            None => (rest, 1, Duration::ZERO),
        };
        let stall = Stall {
            after: duration(after)?,
            length: duration(length)?,
            count,
            every,
        };
        if stall.count > 1 && stall.every <= stall.length {
            return Err(format!(
                "`{s}`: each stop must end before the next (EVERY > LENGTH)"
            ));
        }
        Ok(stall)
    }
}

impl Server {
    /// Stops the server's process (`SIGSTOP`) as `stall` says, each time
    /// letting it go on (`SIGCONT`) after the stop's length: a stall like
    /// a virtual machine's pause, or a host too busy to run it, which the
    /// server must catch up from.
    pub fn stall(&self, stall: Stall) {
        let Some(pid) = self.child.id() else {
            return;
        };
        tokio::spawn(async move {
            let signal = |sig: &'static str| {
                Command::new("kill")
                    .args([sig, &pid.to_string()])
                    .stdin(Stdio::null())
                    .status()
            };
            let start = tokio::time::Instant::now() + stall.after;
            for k in 0..stall.count {
                tokio::time::sleep_until(start + stall.every * k).await;
                if !signal("-STOP").await.is_ok_and(|s| s.success()) {
                    return;
                }
                tokio::time::sleep(stall.length).await;
                let _ = signal("-CONT").await;
            }
            eprintln!(
                "loadtest: server stopped {} time(s) for {:?}",
                stall.count, stall.length
            );
        });
    }
}

/// The server binary: `explicit`, else `sfu` next to this program.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "server binary {} does not exist", p.display());
        return Ok(p.to_owned());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    // Beside us, or one up when we run as a test binary from target/*/deps.
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let cand = d.join("sfu");
        if cand.is_file() {
            return Ok(cand);
        }
    }
    anyhow::bail!(
        "cannot find the server binary `sfu` next to {}: build it (cargo build --release -p sfu) or pass --server-bin",
        exe.display()
    )
}

/// The address in a line like `... listening on http://127.0.0.1:PORT`.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let addr = rest.split(|c: char| c.is_whitespace() || c == '"').next()?;
    addr.parse().ok()
}

/// Starts `bin` with ephemeral ports and room limits raised for load tests;
/// `extra_env` adds or overrides settings.
pub async fn start(bin: &Path, extra_env: &[(String, String)]) -> anyhow::Result<Server> {
    let mut cmd = Command::new(bin);
    // Only SFU_<SECTION>__<KEY> variables are server configuration, and the
    // server refuses unknown keys: drop every inherited SFU_ variable (such
    // as SFU_BIN, which names the binary) so only what is set here applies.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SFU_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("SFU_SERVER__LISTEN", "127.0.0.1:0")
        .env("SFU_MEDIA__UDP_PORT", "0")
        .env("SFU_ROOMS__MAX_SFU_PARTICIPANTS", "1000")
        .env("SFU_ROOMS__MAX_P2P_PARTICIPANTS", "16")
        // Every bot connects from 127.0.0.1: the per-address limit (256 by
        // default) would refuse the bots of a large run past it.
        .env("SFU_LIMITS__MAX_CONNECTIONS_PER_IP", "0")
        .env("SFU_LOG__FORMAT", "human")
        // Warnings only from the libraries: per-connection info lines cost
        // the server CPU that would count against its per-packet figure.
        .env("SFU_LOG__LEVEL", "warn,sfu=info")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr pipe"))?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, rx) = oneshot::channel();
    let tail2 = tail.clone();
    // Keep draining the log so the server never blocks on a full pipe.
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = parse_listening(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
            if let Ok(mut t) = tail2.lock() {
                t.push_back(line);
                if t.len() > 50 {
                    t.pop_front();
                }
            }
        }
    });
    let outcome = tokio::time::timeout(Duration::from_secs(20), rx).await;
    if let Ok(Ok(http)) = outcome {
        return Ok(Server {
            http,
            child,
            log_tail: tail,
        });
    }
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill().await;
    // Let the log reader take the last lines: it ends when the pipe closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    let log = tail
        .lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default();
    match exited {
        Some(status) => {
            anyhow::bail!("the server exited ({status}) before listening; its log:\n{log}")
        }
        None => anyhow::bail!("the server did not report its address within 20 s; its log:\n{log}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_one_stop_or_stops_at_a_period() {
        let ms = Duration::from_millis;
        assert_eq!(
            Stall::parse("8s:1500ms"),
            Ok(Stall {
                after: ms(8000),
                length: ms(1500),
                count: 1,
                every: Duration::ZERO
            })
        );
        assert_eq!(
            Stall::parse("3s:600msx8/1s"),
            Ok(Stall {
                after: ms(3000),
                length: ms(600),
                count: 8,
                every: ms(1000)
            })
        );
        for bad in ["8s", "8s:", "3s:600msx8", "3s:600msxn/1s", "3s:1sx2/500ms"] {
            assert!(Stall::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_the_address_in_log_lines() {
        let l = "2026-11-24T03:00:00Z  INFO sfu::app::server: listening on http://127.0.0.1:43123";
        assert_eq!(parse_listening(l), Some("127.0.0.1:43123".parse().unwrap()));
        let j = r#"{"fields":{"message":"listening on http://127.0.0.1:5000"}}"#;
        assert_eq!(parse_listening(j), Some("127.0.0.1:5000".parse().unwrap()));
        assert_eq!(parse_listening("listening on https://x"), None);
    }
}
