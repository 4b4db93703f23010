//! A load-test run: spawn the bots at the join rate, wait for them to join,
//! measure for the configured duration, stop them, and gather the figures.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bot::{self, BotSpec};
use crate::clip::Clip;
use crate::http;
use crate::outcome::BotReport;
use crate::peer::{Encoding, Publish};
use crate::plan::{Scenario, Shared, Target};
use crate::report::{Adaptive, NodeFigures, Report, ServerSample};
use loadtest::api_stats::{self, SubscriberFigures};

/// The clips, loaded once and shared by every publisher.
pub struct Clips {
    /// One encoding, or the three simulcast encodings lowest first.
    pub video: Vec<Encoding>,
    pub audio: Arc<Clip>,
}

/// The simulcast encodings: rid, clip (size, bitrate).
const SIMULCAST: [(&str, &str); 3] = [
    ("q", "vp8-150k.ivf"),  // 320x180, 150 kbps
    ("h", "vp8-500k.ivf"),  // 640x360, 500 kbps
    ("f", "vp8-1500k.ivf"), // 1280x720, 1500 kbps
];

impl Clips {
    /// Loads the clips from `dir` (the repository's `loadtest/media`): the
    /// one `video_bitrate` picks, or all three for simulcast.
    pub fn load(dir: &Path, video_bitrate: u32, simulcast: bool) -> anyhow::Result<Clips> {
        let video = if simulcast {
            SIMULCAST
                .iter()
                .map(|(rid, file)| {
                    Ok(Encoding {
                        rid: Some((*rid).to_owned()),
                        clip: Arc::new(Clip::read_ivf(&dir.join(file))?),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        } else {
            let file = match video_bitrate {
                0..=300 => "vp8-150k.ivf",
                301..=1000 => "vp8-500k.ivf",
                _ => "vp8-1500k.ivf",
            };
            vec![Encoding {
                rid: None,
                clip: Arc::new(Clip::read_ivf(&dir.join(file))?),
            }]
        };
        Ok(Clips {
            video,
            audio: Arc::new(Clip::read_ogg_opus(&dir.join("opus-32k.ogg"))?),
        })
    }
}

/// Reads a server's `/metrics`.
pub async fn sample_server(http_addr: SocketAddr) -> Option<ServerSample> {
    let (status, text) = http::request(http_addr, "GET", "/metrics", None)
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    Some(ServerSample {
        at: Instant::now(),
        cpu_seconds: http::metric(&text, "sfu_process_cpu_seconds_total"),
        rss_bytes: http::metric(&text, "sfu_process_resident_memory_bytes"),
        packets_out: http::metric(&text, "sfu_packets_out_total").unwrap_or(0.0),
        packets_in: http::metric(&text, "sfu_packets_in_total").unwrap_or(0.0),
        participants: http::metric(&text, "sfu_participants").unwrap_or(0.0),
        nacks: http::metric(&text, "sfu_nacks_answered_total").unwrap_or(0.0),
        keyframe_requests: http::metric(&text, "sfu_keyframe_requests_sent_total").unwrap_or(0.0),
        dropped: http::metric(&text, "sfu_packets_dropped_total").unwrap_or(0.0),
        dropped_by_reason: http::metric_by_label(&text, "sfu_packets_dropped_total", "reason"),
        input_lag_buckets: http::metric_by_label(&text, "sfu_input_lag_seconds_bucket", "le"),
        relay_packets_out: http::metric(&text, "sfu_relay_packets_out_total").unwrap_or(0.0),
        relay_bytes_out: http::metric(&text, "sfu_relay_bytes_out_total").unwrap_or(0.0),
        relay_packets_in: http::metric(&text, "sfu_relay_packets_in_total").unwrap_or(0.0),
        wakeups: http::metric(&text, "sfu_shard_wakeups_total"),
    })
}

/// Reads the server's per-subscriber figures from `/api/stats`; `None`
/// when the server does not expose them.
pub async fn sample_subscribers(target: &Target) -> Option<Vec<SubscriberFigures>> {
    let (status, text) = http::request(target.http, "GET", "/api/stats", None)
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    api_stats::subscribers(&text)
}

/// Live progress on stderr when it is a terminal; silent otherwise.
struct Progress {
    on: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Progress {
            on: enabled && std::io::stderr().is_terminal(),
        }
    }
    fn line(&self, s: &str) {
        if self.on {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K{s}");
            let _ = e.flush();
        }
    }
    fn done(&self) {
        if self.on {
            eprintln!();
        }
    }
}

/// Runs a scenario against a server and returns its report.
pub async fn run(
    scn: &Scenario,
    target: Arc<Target>,
    clips: &Clips,
    progress: bool,
) -> anyhow::Result<Report> {
    let shared = Arc::new(Shared::default());
    let progress = Progress::new(progress);
    let idle = sample_server(target.http).await;

    let mut specs = Vec::new();
    // Publishers first in every room, so subscribers find tracks waiting;
    // rooms are filled side by side.
    for i in 0..scn.publishers + scn.subscribers {
        for r in 0..scn.rooms {
            let publisher = i < scn.publishers;
            let publish = publisher.then(|| Publish {
                video: if scn.audio_only {
                    vec![]
                } else {
                    clips.video.clone()
                },
                audio: Some(clips.audio.clone()),
            });
            let (view, downlink, node) = if publisher {
                (scn.publisher_view, None, None)
            } else {
                let s = i - scn.publishers;
                (
                    scn.subscriber_size(s),
                    scn.subscriber_downlink(s),
                    subscriber_node(&target, s),
                )
            };
            specs.push(BotSpec {
                room: format!("{}-{r}", scn.room_prefix),
                name: format!("{}{i}", if publisher { "pub" } else { "sub" }),
                mode: scn.mode,
                publish,
                node,
                view,
                downlink,
                counting: scn.counting,
            });
        }
    }

    let total = specs.len() as u64;
    let interval = Duration::from_secs_f64(1.0 / scn.join_rate.max(0.1));
    let ramp_start = Instant::now();
    let mut tasks = Vec::with_capacity(specs.len());
    for (n, spec) in specs.into_iter().enumerate() {
        // Joins are paced at the scenario's join rate.
        tokio::time::sleep_until((ramp_start + interval * n as u32).into()).await;
        tasks.push(tokio::spawn(bot::run(spec, target.clone(), shared.clone())));
        progress.line(&format!(
            "starting bots {}/{total}, joined {}",
            n + 1,
            shared.joined.load(Ordering::Relaxed)
        ));
    }
    // Wait for every bot to join (or fail), bounded.
    shared.all_arrived(total, Duration::from_secs(30)).await;
    // Nobody got in (server down, bad key): report the errors at once.
    let nobody = shared.joined.load(Ordering::Relaxed) == 0;
    // Let offers, answers and the first keyframes settle: the scenario's
    // warm-up is a length of time by design, with a progress line every
    // 250 ms.
    let warm_end = Instant::now() + if nobody { Duration::ZERO } else { scn.warmup };
    while Instant::now() < warm_end {
        progress.line(&format!(
            "joined {}/{total}, failed {}, warming up",
            shared.joined.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed)
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let start = sample_server(target.http).await;
    let nodes_start = sample_nodes(&target).await;
    let subscribers_start = sample_subscribers(&target).await;
    let own_cpu_start = own_cpu_seconds();
    shared.measuring.store(true, Ordering::Relaxed);
    let window_start = Instant::now();
    let window_end = window_start + if nobody { Duration::ZERO } else { scn.duration };
    let mut last_packets = 0;
    while Instant::now() < window_end {
        // The measured window is a length of time; a progress line a second.
        tokio::time::sleep(Duration::from_secs(1).min(window_end - Instant::now())).await;
        let p = shared.packets_received.load(Ordering::Relaxed);
        progress.line(&format!(
            "{:>4.0}s/{:.0}s  bots joined {}/{total}  failed {}  packets {p} ({:.0}/s)",
            window_start.elapsed().as_secs_f64(),
            scn.duration.as_secs_f64(),
            shared.joined.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
            (p - last_packets) as f64,
        ));
        last_packets = p;
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let window = window_start.elapsed();
    let own_cpu = match (own_cpu_start, own_cpu_seconds()) {
        (Some(a), Some(b)) => Some((b - a) / window.as_secs_f64() * 100.0),
        _ => None,
    };
    let end = sample_server(target.http).await;
    let nodes_end = sample_nodes(&target).await;
    let subscribers_end = sample_subscribers(&target).await;
    progress.done();

    shared.stop();
    let mut bots: Vec<BotReport> = Vec::with_capacity(tasks.len());
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(10), t).await {
            Ok(Ok(r)) => bots.push(r),
            Ok(Err(e)) => bots.push(BotReport {
                error: Some(format!("bot task panicked: {e}")),
                ..Default::default()
            }),
            Err(_) => bots.push(BotReport {
                error: Some("bot did not stop within 10 s".into()),
                ..Default::default()
            }),
        }
    }
    let mut report = Report::build(scn, &bots, window, idle, start, end);
    report.adaptive = Adaptive::build(
        scn,
        &bots,
        window,
        subscribers_start.as_deref(),
        subscribers_end.as_deref(),
    );
    report.loadtest_cpu_percent = own_cpu;
    report.nodes = nodes_figures(&target, nodes_start, nodes_end);
    Ok(report)
}

/// The node a subscriber joins: round robin over the target and its
/// further nodes; `None` (the target) without further nodes.
fn subscriber_node(target: &Target, s: usize) -> Option<SocketAddr> {
    match s % (target.nodes.len() + 1) {
        0 => None,
        k => Some(target.nodes[k - 1]),
    }
}

/// Every node's `/metrics` when the run spans several; empty otherwise.
async fn sample_nodes(target: &Target) -> Vec<Option<ServerSample>> {
    if target.nodes.is_empty() {
        return Vec::new();
    }
    let mut out = vec![sample_server(target.http).await];
    for n in &target.nodes {
        out.push(sample_server(*n).await);
    }
    out
}

/// Each node's figures over the window; a node that did not answer at
/// the start or the end is left out.
fn nodes_figures(
    target: &Target,
    start: Vec<Option<ServerSample>>,
    end: Vec<Option<ServerSample>>,
) -> Vec<NodeFigures> {
    let addrs = std::iter::once(target.http).chain(target.nodes.iter().copied());
    addrs
        .zip(start.into_iter().zip(end))
        .filter_map(|(addr, (a, b))| Some(NodeFigures::between(addr.to_string(), &a?, &b?)))
        .collect()
}

/// User+system CPU seconds of this process (all threads), from procfs.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from field 3 after the name;
    // in USER_HZ, which Linux fixes at 100.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
