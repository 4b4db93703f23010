//! The I/O shell: the one UDP socket, the shard threads, and the
//! [`MediaPlane`] signaling talks to.
//!
//! Shard 0 owns the receiving end of the shared socket. On each wake-up it
//! drains every ready datagram; one for its own rooms is handled inline on
//! the spot, one for another shard is batched and handed over once per
//! wake-up (one channel message per shard per batch, not per packet). With
//! more than one shard, a client whose address ICE has bound gets a
//! connected socket on the same port in the shard that owns it
//! (`crate::connected`), so its datagrams skip shard 0 altogether. Every
//! shard sends on its own clone of the shared socket. See
//! docs/architecture.md, "Shards and the one port".

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::SeedableRng;
use signaling::media::{
    MediaCommand, MediaEventReceiver, MediaEventSender, MediaPlane, MediaStats, RelayEnd,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;

use crate::batch_recv::{Received, RecvBatch};
use crate::config::MediaConfig;
use crate::core::bind::{AddrTable, MAX_ADDRS_PER_OWNER};
use crate::core::input_lag::{Backlog, InputLag, OverflowCount};
use crate::demux;
use crate::engine::{CODEC_NAMES, CONSENT_TIMEOUT};
use crate::relay_io::RelaySockets;
use crate::shard::{Shard, ShardConfig, UfragChange};
use crate::stats::{self, Drop, SharedCounts};

/// How often shard 0 forgets addresses of connections that are gone.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Datagrams read from the socket before their output is written (see
/// `ShardCtx::drain_socket`): enough to amortise a wake-up, few enough that a
/// forwarded packet leaves within a chunk's processing of its stamped time.
const DRAIN_CHUNK: usize = 32;

/// A connection's ufrag: its shard, and its ICE password to check STUN
/// requests with before their source is routed.
struct UfragEntry {
    shard: usize,
    pwd: String,
}

type UfragTable = Arc<Mutex<HashMap<String, UfragEntry>>>;

/// Addresses to (shard, ufrag), bound only by authenticated STUN (see
/// `core::bind`).
type Routes = AddrTable<(usize, String)>;

enum ShardMsg {
    Command(MediaCommand),
    Datagrams(Vec<(SocketAddr, BytesMut)>),
}

/// The SFU media plane: N shard threads behind one UDP port.
pub struct SfuPlane {
    shards: Vec<mpsc::UnboundedSender<ShardMsg>>,
    counts: Vec<Arc<SharedCounts>>,
    local_addr: SocketAddr,
    /// `[media] refuse_joins_when_behind`.
    refuse_when_behind: bool,
}

impl SfuPlane {
    /// Binds the media port and starts the shards. Fails only if the
    /// socket cannot be bound or a thread cannot start.
    pub fn start(cfg: &MediaConfig) -> io::Result<(Arc<SfuPlane>, MediaEventReceiver)> {
        let (socket, tcp) =
            crate::media_port::bind(SocketAddr::new(cfg.bind, cfg.udp_port), cfg.tcp, |at| {
                let l = std::net::TcpListener::bind(at)?;
                l.set_nonblocking(true)?;
                Ok(l)
            })?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        tracing::info!("media UDP listening on {local_addr}");
        let wanted = cfg.socket_buffer_kb.saturating_mul(1024);
        crate::sockbuf::report(crate::sockbuf::enlarge(&socket, wanted), wanted);
        if let Err(e) = crate::batch_recv::enable_arrival_info(&socket) {
            tracing::warn!("no arrival times on the media socket ({e}): input lag is not measured");
        }
        let tcp_listener = match tcp {
            Ok(Some(l)) => {
                tracing::info!("media TCP listening on {local_addr} (ICE over TCP)");
                Some(l)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(
                    "[media] tcp: cannot listen on TCP {local_addr}: {e}; ICE over TCP is off"
                );
                None
            }
        };
        let tcp_conns = Arc::new(crate::tcp::Connections::default());
        let mut advertise: Vec<SocketAddr> = cfg
            .advertise
            .iter()
            .map(|ip| SocketAddr::new(*ip, local_addr.port()))
            .collect();
        if advertise.is_empty() {
            if cfg.bind.is_unspecified() {
                tracing::warn!(
                    "[media] bind is {} and [media] advertise is empty: advertising 127.0.0.1 only",
                    cfg.bind
                );
                advertise.push(SocketAddr::from(([127, 0, 0, 1], local_addr.port())));
            } else {
                advertise.push(local_addr);
            }
        }
        for c in &cfg.codecs {
            if !CODEC_NAMES.contains(&c.to_ascii_lowercase().as_str()) {
                tracing::warn!("[media] codecs: unknown codec {c:?} ignored");
            }
        }
        let n = if cfg.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cfg.shards
        };
        // With one shard nothing is handed over: the shared socket's one
        // batched read per wake-up is the cheaper path.
        let connected_sockets = cfg.connected_sockets && n > 1 && share_port(&socket);
        let relay_ip = advertise[0].ip();
        let shard_cfg = Arc::new(ShardConfig {
            codecs: cfg.codecs.clone(),
            advertise,
            tcp: tcp_listener.is_some(),
            keyframe_min_interval: Duration::from_millis(cfg.keyframe_min_interval_ms),
            nack_cache_packets: cfg.nack_cache_packets,
            bwe: cfg.bwe.settings(),
            own_srtp: cfg.own_srtp,
            own_srtp_in: cfg.own_srtp_in,
            own_srtcp_in: cfg.own_srtcp_in,
            stale_repair_after: (cfg.max_input_lag_ms > 0)
                .then(|| Duration::from_millis(cfg.max_input_lag_ms)),
        });
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let ufrags: UfragTable = Arc::default();
        let mut txs = Vec::with_capacity(n);
        let mut rxs = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::unbounded_channel();
            txs.push(tx);
            rxs.push(rx);
        }
        let mut counts = Vec::with_capacity(n);
        let mut tcp_listener = tcp_listener;
        for (i, rx) in rxs.into_iter().enumerate() {
            let shared = Arc::new(SharedCounts::default());
            counts.push(shared.clone());
            let ctx = ShardCtx {
                index: i,
                shard: Shard::new(shard_cfg.clone(), StdRng::from_os_rng()),
                rx,
                peers_tx: if i == 0 { txs.clone() } else { Vec::new() },
                socket: socket.try_clone()?,
                events: ev_tx.clone(),
                ufrags: ufrags.clone(),
                shared,
                relay_bind: (cfg.bind, relay_ip),
                tcp: tcp_conns.clone(),
                tcp_listener: if i == 0 { tcp_listener.take() } else { None },
                connected_sockets,
                input_lag: InputLag::new(Duration::from_millis(cfg.max_input_lag_ms)),
                backlog: Backlog::default(),
                shared_overflow: OverflowCount::default(),
                next_wakeups: Instant::now(),
            };
            std::thread::Builder::new()
                .name(format!("media-shard-{i}"))
                .spawn(move || ctx.run())?;
        }
        tracing::info!(shards = n, connected_sockets, "media plane started");
        Ok((
            Arc::new(SfuPlane {
                shards: txs,
                counts,
                local_addr,
                refuse_when_behind: cfg.refuse_joins_when_behind,
            }),
            ev_rx,
        ))
    }

    /// Client addresses held: bound to connections in the shards, and
    /// routed to shards by the receiver. Only authenticated STUN adds to
    /// either, so spoofed sources never grow them.
    pub fn bound_addresses(&self) -> (u64, u64) {
        self.counts
            .iter()
            .map(|c| c.read())
            .fold((0, 0), |(a, r), c| (a + c.addresses, r + c.routes))
    }

    /// How datagrams reach the shards: clients on connected sockets of the
    /// shard that owns them, and datagrams shard 0 handed to another shard
    /// so far (see `crate::connected`).
    pub fn receive_paths(&self) -> (u64, u64) {
        self.counts
            .iter()
            .map(|c| c.read())
            .fold((0, 0), |(s, h), c| {
                (s + c.connected_sockets, h + c.handed_off)
            })
    }

    /// The bound media address (useful with `udp_port = 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shard a room lives on.
    pub fn shard_for_room(&self, room: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        room.hash(&mut h);
        (h.finish() % self.shards.len() as u64) as usize
    }
}

impl MediaPlane for SfuPlane {
    fn handle(&self, command: MediaCommand) {
        // Every command names its room, and a room lives on one shard.
        let i = self.shard_for_room(command.room().as_str());
        let _ = self.shards[i].send(ShardMsg::Command(command));
    }

    fn at_capacity(&self) -> bool {
        self.refuse_when_behind && self.counts.iter().any(|c| c.is_behind())
    }

    fn stats(&self) -> MediaStats {
        let mut s = stats::sum(self.counts.iter().map(|c| c.read()));
        s.shards_behind = self.counts.iter().filter(|c| c.is_behind()).count() as u64;
        s.subscribers = self
            .counts
            .iter()
            .flat_map(|c| c.read_subscribers())
            .collect();
        s
    }
}

/// Everything one shard thread owns.
struct ShardCtx {
    index: usize,
    shard: Shard,
    rx: mpsc::UnboundedReceiver<ShardMsg>,
    /// Shard 0 only: where to hand datagrams for other shards.
    peers_tx: Vec<mpsc::UnboundedSender<ShardMsg>>,
    socket: StdSocket,
    events: MediaEventSender,
    ufrags: UfragTable,
    shared: Arc<SharedCounts>,
    /// (bind, advertised) address of relay sockets.
    relay_bind: (std::net::IpAddr, std::net::IpAddr),
    /// Open ICE-over-TCP connections (every shard sends on them).
    tcp: Arc<crate::tcp::Connections>,
    /// Shard 0 only, with `[media] tcp`: the media port's TCP listener.
    tcp_listener: Option<std::net::TcpListener>,
    /// `[media] connected_sockets`, and the shared socket allows them.
    connected_sockets: bool,
    /// `[media] max_input_lag`: what is too late to read.
    input_lag: InputLag,
    /// Whether this shard reads late for long (published in `shared`).
    backlog: Backlog,
    /// The shared socket's drops, shard 0 only (it alone reads it).
    shared_overflow: OverflowCount,
    /// When the thread's wake-ups are next read (see `thread_wakeups`).
    next_wakeups: Instant,
}

/// Counts what the kernel dropped before this datagram (`dropped`),
/// observes how long it waited in the kernel, and says whether it is still
/// worth reading (see `core::input_lag`); one that is not is counted and
/// dropped. `now`: the read's time on both clocks (the kernel stamps
/// arrivals with the system clock).
fn admit(
    shard: &mut Shard,
    (rule, backlog): (InputLag, &mut Backlog),
    got: &Received,
    data: &[u8],
    dropped: u32,
    (now, wall): (Instant, SystemTime),
) -> bool {
    shard
        .counts
        .drop_n(Drop::SocketOverflow, u64::from(dropped));
    let Some(at) = got.arrived else {
        return true;
    };
    let lag = wall.duration_since(at).unwrap_or_default();
    shard.counts.observe_input_lag(lag);
    backlog.observe(lag, now);
    if rule.keep(lag, data) {
        return true;
    }
    shard.counts.packets_in += 1;
    shard.counts.bytes_in += data.len() as u64;
    shard.refuse(Drop::StaleInput, got.from, now);
    false
}

impl ShardCtx {
    fn run(self) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("media shard {} cannot start: {e}", self.index);
                return;
            }
        };
        rt.block_on(self.run_loop());
    }

    async fn run_loop(mut self) {
        // Polled for reading only (see `crate::read_only`).
        let receiver = if self.index == 0 {
            match self.socket.try_clone().and_then(crate::read_only::register) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!("media socket cannot be polled: {e}");
                    None
                }
            }
        } else {
            None
        };
        // Frames from ICE-over-TCP connections, taken like datagrams.
        let tcp_refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tcp_in = match self
            .tcp_listener
            .take()
            .map(tokio::net::TcpListener::from_std)
        {
            Some(Ok(listener)) => {
                let (tx, rx) = mpsc::channel(crate::tcp::INBOUND_QUEUE);
                tokio::spawn(crate::tcp::accept(
                    listener,
                    self.tcp.clone(),
                    tx,
                    tcp_refused.clone(),
                ));
                Some(rx)
            }
            Some(Err(e)) => {
                tracing::warn!("media TCP listener cannot be polled: {e}");
                None
            }
            None => None,
        };
        let mut batch = RecvBatch::new(DRAIN_CHUNK);
        let mut connected = self.open_connected();
        let mut connected_batch = RecvBatch::new(DRAIN_CHUNK);
        let mut routes: Routes = AddrTable::new(CONSENT_TIMEOUT, MAX_ADDRS_PER_OWNER);
        let mut batches: Vec<Vec<(SocketAddr, BytesMut)>> = vec![Vec::new(); self.peers_tx.len()];
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let mut relays = RelaySockets::new(self.relay_bind.0, self.relay_bind.1);
        let mut had_peers = false;
        loop {
            let next = self.shard.next_deadline();
            let deadline = next
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1));
            tokio::select! {
                msg = self.rx.recv() => {
                    let Some(msg) = msg else { break };
                    let now = Instant::now();
                    self.on_msg(msg, now, &mut relays);
                    while let Ok(m) = self.rx.try_recv() {
                        self.on_msg(m, now, &mut relays);
                    }
                }
                Some((local, from, data)) = relays.recv() => {
                    let now = Instant::now();
                    self.shard.handle_relay_datagram(local, from, data, now);
                    while let Some((local, from, data)) = relays.try_recv() {
                        self.shard.handle_relay_datagram(local, from, data, now);
                    }
                    self.shard.handle_timeout(now);
                }
                Some((from, data)) = tcp_frame(tcp_in.as_mut()) => {
                    let now = Instant::now();
                    self.dispatch(from, &data, now, &mut routes, &mut batches);
                    while let Some((from, data)) = tcp_in.as_mut().and_then(|r| r.try_recv().ok()) {
                        self.dispatch(from, &data, now, &mut routes, &mut batches);
                    }
                    self.flush_batches(&mut batches);
                    self.shard.handle_timeout(now);
                }
                r = readable(receiver.as_ref()) => {
                    if r.is_ok() {
                        if let Some(sock) = receiver.as_ref() {
                            // A chunk at a time, its output written before
                            // the next is read (see `drain_socket`).
                            while self.drain_socket(sock, &mut batch, &mut routes, &mut batches) {
                                self.emit(&mut relays);
                            }
                        }
                    }
                }
                _ = connected_readable(connected.as_ref()) => {
                    if let Some(c) = connected.as_mut() {
                        while self.drain_connected(c, &mut connected_batch) {
                            self.emit(&mut relays);
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
            let now = Instant::now();
            // What was due by the deadline the loop slept towards (the
            // timer fired, or it passed while an arm ran). The arms that
            // take input run the timers at their own `now` already, and
            // anything an arm made due since is seen at the top of the next
            // turn: the deadline is not computed twice per wake-up (it
            // visits every connection).
            if next.is_some_and(|d| d <= now) {
                self.shard.handle_timeout(now);
            }
            if self.index == 0 && now >= next_sweep {
                next_sweep = now + SWEEP_EVERY;
                let table = self.ufrags.lock().unwrap_or_else(|e| e.into_inner());
                routes.retain_owners(|(_, u)| table.contains_key(u));
            }
            for _ in 0..tcp_refused.swap(0, std::sync::atomic::Ordering::Relaxed) {
                self.shard.counts.drop(Drop::TcpRefused);
            }
            self.sync_connected(connected.as_mut());
            self.emit(&mut relays);
            let has_peers = self.shard.peer_count() > 0;
            if had_peers && !has_peers {
                crate::heap::release_free_heap();
                tracing::debug!(shard = self.index, "shard empty: free heap returned");
            }
            had_peers = has_peers;
        }
    }

    /// This shard's connected sockets, if on (see `crate::connected`).
    #[cfg(target_os = "linux")]
    fn open_connected(&self) -> Option<crate::connected::ConnectedSockets> {
        if !self.connected_sockets {
            return None;
        }
        let local = self.socket.local_addr().ok()?;
        match crate::connected::ConnectedSockets::new(local) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(
                    shard = self.index,
                    "no connected sockets ({e}): shard 0 hands this shard its datagrams"
                );
                None
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn open_connected(&self) -> Option<Connected> {
        None
    }

    /// Opens and closes connected sockets as the shard binds and forgets
    /// client addresses (a no-op while none changed).
    fn sync_connected(&mut self, connected: Option<&mut Connected>) {
        #[cfg(target_os = "linux")]
        if let Some(c) = connected {
            let tcp = &self.tcp;
            let (version, addrs) = self.shard.bound_addresses();
            c.sync(version, addrs, |a| tcp.contains(a));
            self.shard.counts.connected_sockets = c.len() as u64;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = connected;
    }

    /// Reads a chunk from each ready connected socket, all at one `now`,
    /// like `drain_socket` for the shared one; true when more may wait.
    fn drain_connected(&mut self, c: &mut Connected, batch: &mut RecvBatch) -> bool {
        #[cfg(target_os = "linux")]
        {
            let now = Instant::now();
            let wall = SystemTime::now();
            let shard = &mut self.shard;
            let (lag, backlog) = (self.input_lag, &mut self.backlog);
            let more = c.drain(batch, |got, data, dropped| {
                if !admit(shard, (lag, &mut *backlog), got, data, dropped, (now, wall)) {
                    return;
                }
                if got.truncated {
                    shard.refuse_oversize(got.from, data.len(), now);
                } else {
                    shard.handle_datagram(got.from, BytesMut::from(data), now);
                }
            });
            self.shard.handle_timeout(now);
            more
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (c, batch);
            false
        }
    }

    fn on_msg(&mut self, msg: ShardMsg, now: Instant, relays: &mut RelaySockets) {
        match msg {
            // A relay's full end gets a socket of its own first.
            ShardMsg::Command(MediaCommand::RelayOpen {
                room,
                node,
                end: RelayEnd::Full,
            }) => match relays.open() {
                Ok(local) => self
                    .shard
                    .open_relay(&room, &node, RelayEnd::Full, Some(local), now),
                Err(e) => tracing::warn!(%room, %node, "cannot bind a relay socket: {e}"),
            },
            ShardMsg::Command(c) => self.shard.handle_command(c, now),
            ShardMsg::Datagrams(batch) => {
                for (from, data) in batch {
                    self.shard.handle_datagram(from, data, now);
                }
                self.shard.handle_timeout(now);
            }
        }
    }

    /// Reads up to `DRAIN_CHUNK` ready datagrams, all at one `now`: ours
    /// are handled at once, the others' batched per shard. Returns true
    /// when the chunk was full (more may wait). The caller writes the
    /// chunk's output before reading on: packets forwarded are
    /// stamped with `now` as their send time for the subscribers' estimates,
    /// so a backlog drained at one `now` and written at the end (a shard
    /// that was not scheduled for a while on a busy machine) would show
    /// every subscriber a queue that is not on its path.
    fn drain_socket(
        &mut self,
        sock: &AsyncFd<StdSocket>,
        batch: &mut RecvBatch,
        routes: &mut Routes,
        batches: &mut [Vec<(SocketAddr, BytesMut)>],
    ) -> bool {
        let now = Instant::now();
        // One system call for the chunk; tokio clears the socket's
        // readiness when it would block.
        let full = match sock.try_io(Interest::READABLE, |s| batch.recv(s)) {
            Ok(_) => batch.is_full(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                tracing::debug!("media socket receive error: {e}");
                return false;
            }
        };
        let wall = SystemTime::now();
        for i in 0..batch.len() {
            let (got, data) = batch.get(i);
            let dropped = got.overflow.map_or(0, |v| self.shared_overflow.observe(v));
            if !admit(
                &mut self.shard,
                (self.input_lag, &mut self.backlog),
                &got,
                data,
                dropped,
                (now, wall),
            ) {
                continue;
            }
            if got.truncated {
                self.shard.refuse_oversize(got.from, got.len, now);
                continue;
            }
            self.dispatch(got.from, data, now, routes, batches);
        }
        self.shard.counts.routes = routes.len() as u64;
        self.flush_batches(batches);
        self.shard.handle_timeout(now);
        full
    }

    /// One datagram (from the UDP socket or a TCP connection's frame) to
    /// the shard that owns its source: this one at once, others batched.
    fn dispatch(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
        routes: &mut Routes,
        batches: &mut [Vec<(SocketAddr, BytesMut)>],
    ) {
        let target = if demux::classify(data) == demux::Kind::Stun {
            self.route_stun(from, data, now, routes)
        } else {
            match routes.owner(&from) {
                Some((i, _)) => Ok(*i),
                None if demux::classify(data) == demux::Kind::Other => Err(Drop::Garbage),
                None => Err(Drop::UnknownSource),
            }
        };
        match target {
            Ok(0) => self.shard.handle_datagram(from, BytesMut::from(data), now),
            Ok(i) if i < batches.len() => {
                self.shard.counts.handed_off += 1;
                batches[i].push((from, BytesMut::from(data)))
            }
            Ok(_) => {}
            Err(why) => {
                self.shard.counts.packets_in += 1;
                self.shard.counts.bytes_in += data.len() as u64;
                self.shard.refuse(why, from, now);
            }
        }
    }

    /// Hands each other shard its batch.
    fn flush_batches(&mut self, batches: &mut [Vec<(SocketAddr, BytesMut)>]) {
        for (i, batch) in batches.iter_mut().enumerate() {
            if !batch.is_empty() {
                let b = std::mem::take(batch);
                if self.peers_tx[i].send(ShardMsg::Datagrams(b)).is_err() {
                    self.shard.counts.drop(Drop::ShardGone);
                }
            }
        }
    }

    /// The shard a STUN datagram goes to: only a binding request signed
    /// with the password of the connection it names routes (or re-routes)
    /// its source address, and never away from another live connection
    /// that holds it (see `core::bind`).
    fn route_stun(
        &self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
        routes: &mut Routes,
    ) -> Result<usize, Drop> {
        if demux::stun_type(data) == Some(demux::BINDING_SUCCESS) {
            // A response to a connection's own check: it goes where its
            // address is routed, and the shard checks its signature.
            return routes
                .owner(&from)
                .map(|(i, _)| *i)
                .ok_or(Drop::UnknownSource);
        }
        let Some(u) = demux::stun_ufrag(data) else {
            return Err(if routes.owner(&from).is_some() {
                Drop::StunUnauthenticated
            } else {
                Drop::UnknownSource
            });
        };
        let table = self.ufrags.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = table.get(u) else {
            return Err(Drop::UnknownSource);
        };
        if demux::verify_binding_request(data, entry.pwd.as_bytes()).is_err() {
            return Err(Drop::StunUnauthenticated);
        }
        let shard = entry.shard;
        routes
            .authenticated(from, (shard, u.to_owned()), now, |(_, u)| {
                table.contains_key(u)
            })
            .map_err(|_| Drop::AddressInUse)?;
        self.tcp.authenticated(from);
        Ok(shard)
    }

    /// Sends what the shard produced and publishes its counters.
    fn emit(&mut self, relays: &mut RelaySockets) {
        let (out, events, ufrag_changes) = self.shard.take_output();
        let mut send_failed = self.tcp.divert(out);
        send_failed += crate::batch_send::send_all(&self.socket, out);
        out.clear();
        if !ufrag_changes.is_empty() {
            let mut table = self.ufrags.lock().unwrap_or_else(|e| e.into_inner());
            for c in ufrag_changes.drain(..) {
                match c {
                    UfragChange::Added { ufrag, pwd } => {
                        table.insert(
                            ufrag,
                            UfragEntry {
                                shard: self.index,
                                pwd,
                            },
                        );
                    }
                    UfragChange::Removed(u) => {
                        table.remove(&u);
                    }
                }
            }
        }
        for e in events.drain(..) {
            let _ = self.events.send(e);
        }
        let (relay_out, released) = self.shard.take_relay_output();
        for (local, to, data) in relay_out.drain(..) {
            if !relays.send(local, to, &data) {
                send_failed += 1;
            }
        }
        for local in released.drain(..) {
            relays.release(local);
        }
        for _ in 0..send_failed {
            self.shard.counts.drop(Drop::SendFailed);
        }
        let now = Instant::now();
        if now >= self.next_wakeups {
            self.next_wakeups = now + Duration::from_secs(1);
            if let Some(n) = thread_wakeups() {
                self.shard.counts.wakeups = n;
            }
        }
        self.shared.publish(&self.shard.counts);
        self.shard.behind = self.backlog.is_behind(now);
        self.shared.set_behind(self.shard.behind);
        if std::mem::take(&mut self.shard.subscribers.1) {
            // Handed over, not copied: the shard makes them anew.
            self.shared
                .publish_subscribers(std::mem::take(&mut self.shard.subscribers.0));
        }
    }
}

#[cfg(target_os = "linux")]
type Connected = crate::connected::ConnectedSockets;
/// No connected sockets off Linux.
#[cfg(not(target_os = "linux"))]
enum Connected {}

/// How often the calling thread slept and was woken so far (its voluntary
/// context switches); a system call, so read about once a second.
fn thread_wakeups() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: all-zero is a valid rusage, which getrusage fills in.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid rusage to write to.
        let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
        (r == 0).then_some(u.ru_nvcsw as u64)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Waits until a connected socket may be readable; forever without them.
async fn connected_readable(c: Option<&Connected>) {
    match c {
        #[cfg(target_os = "linux")]
        Some(c) => c.readable().await,
        #[cfg(not(target_os = "linux"))]
        Some(c) => match *c {},
        None => std::future::pending().await,
    }
}

/// Lets connected sockets share the media port (`crate::connected`): the
/// shared socket gets `SO_REUSEPORT` after its bind, so binding the port
/// still fails while another program holds it. False (logged) where that
/// cannot be done; datagrams then all come through shard 0.
fn share_port(socket: &StdSocket) -> bool {
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        false
    }
    #[cfg(target_os = "linux")]
    match socket2::SockRef::from(socket).set_reuse_port(true) {
        Ok(()) => {
            crate::connected::raise_fd_limit();
            true
        }
        Err(e) => {
            tracing::warn!("[media] connected_sockets: cannot share the media port ({e}); off");
            false
        }
    }
}

/// Waits until the socket is readable; forever for shards without one.
async fn readable(s: Option<&AsyncFd<StdSocket>>) -> io::Result<()> {
    match s {
        // The readiness stays set until a read would block (`try_io`).
        Some(s) => s.readable().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// The next frame from the TCP connections; forever without them.
async fn tcp_frame(
    rx: Option<&mut mpsc::Receiver<(SocketAddr, BytesMut)>>,
) -> Option<(SocketAddr, BytesMut)> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
