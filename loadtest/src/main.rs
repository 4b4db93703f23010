//! `loadtest`: bots that join rooms of the media server through its real
//! protocol, publish real VP8 and Opus from clips, subscribe, and report
//! what they saw next to what the server spent.
//!
//! `loadtest run ...` runs one scenario; `loadtest sweep ...` runs a series
//! of sizes and draws a chart. See docs/loadtest.md.

mod abs_time;
mod bot;
mod chart;
mod clip;
use loadtest::http;
mod outcome;
mod peer;
mod plan;
mod playout;
mod report;
mod scenario;
mod shaper;
mod spawn;
mod stats;
mod video_layer;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use signaling::protocol::RoomMode;

use plan::{Scenario, Target, ViewSize};
use report::Report;
use scenario::Clips;
use shaper::LinkSpec;

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Load-test bots and benchmark reports for the media server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario and report.
    Run(RunArgs),
    /// Run the scenario at several sizes (number of rooms) and chart the
    /// server's CPU per forwarded packet and the delivery.
    Sweep {
        #[command(flatten)]
        run: RunArgs,
        /// Room counts to run, e.g. `1,2,4,8`.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        sizes: Vec<usize>,
        /// Where to write the SVG chart.
        #[arg(long, default_value = "loadtest-sweep.svg")]
        svg: PathBuf,
    },
}

/// How bots read what they receive (`--receive`).
#[derive(Clone, Copy, ValueEnum)]
enum Receive {
    Full,
    Count,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Sfu,
    P2p,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// The server's HTTP address (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:7880")]
    url: String,
    /// A further node of a cluster (HTTP address, loopback only; repeat for
    /// more): publishers join --url, subscribers are spread over --url and
    /// these, and the report adds each node's figures and relay traffic.
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Start the server binary on loopback with ephemeral ports instead.
    #[arg(long)]
    spawn_server: bool,
    /// The server binary for --spawn-server (default: `sfu` next to loadtest).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Extra server settings for --spawn-server, `KEY=VALUE` (e.g. SFU_MEDIA__SHARDS=1).
    #[arg(long = "server-env")]
    server_env: Vec<String>,
    /// With --spawn-server: stop the server's process `AFTER:LENGTH` from
    /// its start (e.g. `8s:1500ms`), or `AFTER:LENGTHxCOUNT/EVERY` (e.g.
    /// `3s:600msx8/1s`), then let it go on: to see it catch up (the
    /// report's input lag and `stale_input` drops) or, stopped again and
    /// again, refuse joins (`server_busy`).
    #[arg(long, value_parser = spawn::Stall::parse)]
    stall_server: Option<spawn::Stall>,
    /// `name:secret` of an API key to sign tokens with (otherwise the
    /// development-mode endpoint mints them).
    #[arg(long)]
    api_key: Option<String>,
    /// Join with `redirect: true`: a cluster may send a bot to the node
    /// serving its room, and the bot follows (its join time includes it).
    #[arg(long)]
    redirect: bool,
    /// Rooms to fill.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Publishing bots per room (they also receive the others).
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Receive-only bots per room.
    #[arg(long, default_value_t = 2)]
    subscribers: usize,
    /// Publish audio only.
    #[arg(long)]
    audio_only: bool,
    /// Video bitrate in kbps: 150, 500 or 1500 (picks the clip).
    #[arg(long, default_value_t = 500)]
    video_bitrate: u32,
    /// Publish three simulcast encodings (rids q, h, f: 320x180 at 150
    /// kbps, 640x360 at 500, 1280x720 at 1500) instead of one.
    #[arg(long)]
    simulcast: bool,
    /// Sizes subscribers show remote video at (`track-settings`), e.g.
    /// `320x180` or `320x180,320x180,1280x720` (subscribers of each room
    /// take them in turn).
    #[arg(long, value_delimiter = ',')]
    subscriber_size: Vec<ViewSize>,
    /// The size publishers show the others' video at.
    #[arg(long)]
    publisher_view_size: Option<ViewSize>,
    /// Cap subscribers' downlink at this many kbit/s (a token bucket with a
    /// tail-drop queue in the bot's receive path).
    #[arg(long)]
    downlink_kbps: Option<u32>,
    /// Length of the capped downlink's queue.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    downlink_queue: Duration,
    /// Share of each room's subscribers that is capped (the first ones),
    /// 0 to 1.
    #[arg(long, default_value_t = 1.0)]
    capped_share: f64,
    /// How bots read what they receive: `full` decrypts and decodes it
    /// like a browser; `count` counts RTP from the header SRTP leaves in
    /// the clear (sequence number, timestamp, abs-capture-time, the
    /// transport-wide number, answered with feedback as before) without
    /// decrypting or decoding it, at a fraction of the bots' CPU: to take
    /// the server to saturation on the machine it shares with the bots.
    /// No frames, freezes, NACKs or keyframe requests then.
    #[arg(long, value_enum, default_value = "full")]
    receive: Receive,
    /// Length of the measured window, e.g. `30s`, `2m`.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Bots started per second.
    #[arg(long, default_value_t = 20.0)]
    join_rate: f64,
    /// Settling time after the last join, before measuring.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    #[arg(long, value_enum, default_value = "sfu")]
    mode: Mode,
    /// Room name prefix.
    #[arg(long, default_value = "loadtest")]
    room: String,
    /// Directory of the media clips.
    #[arg(long, default_value_os_t = default_media_dir())]
    media: PathBuf,
    /// Write the report (or, for sweep, all reports) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
}

fn default_media_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("media")
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30s or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in `{s}`: use ms, s or m")),
    };
    if !(0.0..=3600.0).contains(&secs) {
        return Err("durations run from 0 to 1 hour".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The HTTP address in `url`, refused unless it is loopback.
fn loopback_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("a server URL must start with http:// (got {url})"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_owned()
    } else {
        format!("{hostport}:80")
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("cannot resolve {hostport}: {e}"))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{hostport} is not a loopback address: the load test only targets this machine"
            )
        })?;
    Ok(addr)
}

fn api_key(s: &Option<String>) -> anyhow::Result<Option<(String, String)>> {
    match s {
        None => Ok(None),
        Some(s) => {
            let (k, v) = s
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--api-key must be name:secret"))?;
            Ok(Some((k.to_owned(), v.to_owned())))
        }
    }
}

fn scenario(a: &RunArgs, rooms: usize) -> Scenario {
    Scenario {
        rooms,
        publishers: a.publishers,
        subscribers: a.subscribers,
        audio_only: a.audio_only,
        video_bitrate: a.video_bitrate,
        simulcast: a.simulcast,
        duration: a.duration,
        join_rate: a.join_rate,
        mode: match a.mode {
            Mode::Sfu => RoomMode::Sfu,
            Mode::P2p => RoomMode::P2p,
        },
        warmup: a.warmup,
        room_prefix: a.room.clone(),
        subscriber_sizes: a.subscriber_size.clone(),
        publisher_view: a.publisher_view_size,
        downlink: a.downlink_kbps.map(|kbps| LinkSpec {
            rate_bps: u64::from(kbps) * 1000,
            queue: a.downlink_queue,
        }),
        capped_share: a.capped_share,
        counting: matches!(a.receive, Receive::Count),
    }
}

/// Runs one scenario, with its own server when asked.
async fn run_one(a: &RunArgs, rooms: usize, clips: &Clips) -> anyhow::Result<Report> {
    let scn = scenario(a, rooms);
    anyhow::ensure!(
        scn.bots() > 0,
        "no bots: give --publishers or --subscribers"
    );
    anyhow::ensure!(scn.bots() <= 2000, "at most 2000 bots per run");
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.capped_share),
        "--capped-share runs from 0 to 1"
    );
    anyhow::ensure!(
        a.downlink_kbps.is_none_or(|k| k >= 8),
        "--downlink-kbps must be at least 8"
    );
    anyhow::ensure!(
        !(matches!(a.receive, Receive::Count) && a.downlink_kbps.is_some()),
        "--receive count reads datagrams as they arrive: drop --downlink-kbps"
    );
    anyhow::ensure!(
        !(matches!(a.receive, Receive::Count) && a.simulcast),
        "--receive count does not decode, so it cannot tell simulcast layers apart: drop --simulcast"
    );
    anyhow::ensure!(
        !(a.simulcast && a.audio_only),
        "--simulcast needs video: drop --audio-only"
    );
    anyhow::ensure!(
        !(a.simulcast && matches!(a.mode, Mode::P2p)),
        "--simulcast needs an SFU room: a P2P receiver would get all three encodings"
    );
    let key = api_key(&a.api_key)?;
    let _server;
    let http = if a.spawn_server {
        let bin = spawn::locate(a.server_bin.as_deref())?;
        let mut env = Vec::new();
        for kv in &a.server_env {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--server-env must be KEY=VALUE"))?;
            env.push((k.to_owned(), v.to_owned()));
        }
        if let Some((k, v)) = &key {
            env.push((format!("SFU_AUTH__KEYS__{k}"), v.clone()));
        }
        let s = spawn::start(&bin, &env).await?;
        if let Some(stall) = a.stall_server {
            s.stall(stall);
        }
        let addr = s.http;
        _server = Some(s);
        addr
    } else {
        _server = None;
        loopback_addr(&a.url)?
    };
    anyhow::ensure!(
        a.spawn_server || a.stall_server.is_none(),
        "--stall-server stops a server this run starts: it needs --spawn-server"
    );
    if a.spawn_server && !a.nodes.is_empty() {
        anyhow::bail!("--node names nodes of a running cluster; it cannot go with --spawn-server");
    }
    let nodes = a
        .nodes
        .iter()
        .map(|u| loopback_addr(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let target = Arc::new(Target {
        http,
        api_key: key,
        follow_redirects: a.redirect,
        nodes,
    });
    let report = scenario::run(&scn, target, clips, !a.quiet).await?;
    if report.failed_bots > 0 {
        if let Some(s) = &_server {
            if let Ok(tail) = s.log_tail.lock() {
                eprintln!("loadtest: bots failed; the server's last log lines:");
                for l in tail.iter() {
                    eprintln!("  {l}");
                }
            }
        }
    }
    Ok(report)
}

fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

async fn main_async(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Run(a) => {
            let clips = Clips::load(&a.media, a.video_bitrate, a.simulcast)?;
            let report = run_one(&a, a.rooms, &clips).await?;
            print!("{}", report.table());
            if let Some(p) = &a.json {
                write_json(p, &report)?;
            }
            Ok(report.failed_bots == 0)
        }
        Command::Sweep { run, sizes, svg } => {
            let clips = Clips::load(&run.media, run.video_bitrate, run.simulcast)?;
            let mut reports = Vec::new();
            for &rooms in &sizes {
                let r = run_one(&run, rooms, &clips).await?;
                println!("== {} rooms, {} bots", rooms, r.bots);
                print!("{}", r.table());
                reports.push(r);
            }
            let title = format!(
                "{} mode: rooms of {} publishers + {} subscribers, {}",
                scenario(&run, 1).mode.as_str(),
                run.publishers,
                run.subscribers,
                report::media_label(run.audio_only, run.video_bitrate, run.simulcast)
            );
            std::fs::write(&svg, chart::svg(&title, &reports))
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", svg.display()))?;
            if let Some(p) = &run.json {
                write_json(p, &reports)?;
            }
            Ok(reports.iter().all(|r| r.failed_bots == 0))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_async(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(
            loopback_addr("http://127.0.0.1:7880").unwrap(),
            "127.0.0.1:7880".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(loopback_addr("http://127.0.0.1/x").unwrap().port(), 80);
        assert!(loopback_addr("http://[::1]:9000")
            .unwrap()
            .ip()
            .is_loopback());
        assert!(loopback_addr("http://10.1.2.3:7880").is_err());
        assert!(loopback_addr("https://127.0.0.1:7880").is_err());
        assert!(loopback_addr("127.0.0.1:7880").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
