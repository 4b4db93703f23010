//! Stopping the server binary with a signal: SIGTERM ends it cleanly
//! (exit status 0, a log line), also as the first process of its own PID
//! namespace, which is how a container runs it and where a signal with no
//! handler is ignored.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// A started process; a thread waits for its end.
struct Running {
    pid: u32,
    ended: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
}

impl Running {
    fn new(mut child: Child) -> Running {
        let pid = child.id();
        let (tx, ended) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(st) = child.wait() {
                let _ = tx.send(st);
            }
        });
        Running {
            pid,
            ended,
            status: None,
        }
    }

    /// Waits (at most a generous minute) for the process to end.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.ended.recv_timeout(Duration::from_secs(60)).ok();
        }
        self.status
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Still running: the waiting thread has not reaped it, so the pid
        // is still this process's.
        if self.status.is_none() && self.ended.try_recv() == Err(TryRecvError::Empty) {
            // SAFETY: kill(2) takes plain integers and touches no memory.
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
            }
            let _ = self.ended.recv_timeout(Duration::from_secs(10));
        }
    }
}

/// Starts `program args…` (the server, or a wrapper around it), waits for
/// the server's "listening on" line and keeps draining its log.
fn start(program: &str, args: &[&str]) -> (Running, Receiver<String>) {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("SFU_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("SFU_SERVER__LISTEN", "127.0.0.1:0")
        .env("SFU_MEDIA__UDP_PORT", "0")
        .env("SFU_MEDIA__BIND", "127.0.0.1");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening on http://") => break,
            Ok(_) => {}
            Err(e) => panic!("the server did not start listening: {e}"),
        }
    }
    (Running::new(child), rx)
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {signal} {pid}");
}

/// Whether the server logged `what`: read until the line comes or its log
/// ends (the process has ended when this is asked, but the thread that
/// drains its log may not have passed on the last lines yet), for at most
/// a generous 30 s.
fn logged(rx: &Receiver<String>, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(what) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let (mut server, log) = start(env!("CARGO_BIN_EXE_sfu"), &[]);
    kill(server.pid, "-TERM");
    let st = server.exit_status().expect("the server ends after SIGTERM");
    assert_eq!(
        st.code(),
        Some(0),
        "a clean exit, not death by the signal: {st}"
    );
    assert!(logged(&log, "SIGTERM: stopping"));
}

#[test]
fn sigint_stops_the_server_cleanly() {
    let (mut server, log) = start(env!("CARGO_BIN_EXE_sfu"), &[]);
    kill(server.pid, "-INT");
    let st = server.exit_status().expect("the server ends after SIGINT");
    assert_eq!(st.code(), Some(0), "{st}");
    assert!(logged(&log, "SIGINT: stopping"));
}

/// As PID 1 of a new PID namespace (a container without an init), a
/// signal sent from outside reaches the server only if it handles it.
#[test]
fn sigterm_stops_the_server_as_the_first_process_of_a_pid_namespace() {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot make a PID namespace here (unshare --pid needs root)");
        return;
    }
    // `--kill-child`: a failing test that kills `unshare` ends the server too.
    let (mut wrapper, log) = start(
        "unshare",
        &["--pid", "--fork", "--kill-child", env!("CARGO_BIN_EXE_sfu")],
    );
    // The server is the child `unshare` forked.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", wrapper.pid)).unwrap();
    let pid: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "PID 1 in its namespace: {nspid}"
    );
    kill(pid, "-TERM");
    let st = wrapper
        .exit_status()
        .expect("the server, as PID 1, ends after SIGTERM");
    assert_eq!(st.code(), Some(0), "{st}");
    assert!(logged(&log, "SIGTERM: stopping"));
}
