//! A connection flood: many fresh identities, each opening one connection to a target and
//! holding it, optionally advertising many made-up addresses through identify (the
//! attacks of issue 11 on a daemon's descriptors and per-peer tables).
//!
//! Each identity dials until one connection is established (a refused dial is retried
//! after a pause), then holds it until the target closes it or the flood stops; an
//! identity whose connection was closed stays away. It runs on its own thread and tokio
//! runtime, so a test can drive the CLI meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use paircode_net::protocol::{IDENTIFY_PROTOCOL, PAIR_PROTOCOL};

#[derive(NetworkBehaviour)]
struct Attacker {
    identify: identify::Behaviour,
    streams: libp2p_stream::Behaviour,
}

/// What to flood, and how.
#[derive(Debug, Clone)]
pub struct FloodConfig {
    pub target: Multiaddr,
    pub identities: usize,
    /// Made-up addresses each identity advertises through identify.
    pub addresses_each: usize,
    /// First dials are spread over this long.
    pub ramp: Duration,
    /// Pause before an identity dials again after a refused or failed dial.
    pub redial_after: Duration,
    /// Once connected, each identity keeps this many `/paircode/pair/1` streams open
    /// without sending a byte, opening new ones as the target drops them (0: none).
    pub streams_each: usize,
}

/// Counters, readable while the flood runs.
#[derive(Debug, Default)]
pub struct FloodCounters {
    /// Connections established so far.
    pub established: AtomicU64,
    /// Connections open right now.
    pub open: AtomicU64,
    /// Dials refused or failed.
    pub refused: AtomicU64,
    /// Established connections the target closed.
    pub closed_by_target: AtomicU64,
    /// Streams opened (see [`FloodConfig::streams_each`]).
    pub streams: AtomicU64,
}

pub struct Flood {
    pub counters: Arc<FloodCounters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    pub fn start(config: FloodConfig) -> Flood {
        let counters = Arc::new(FloodCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("flood runtime");
            runtime.block_on(run(config, c, s));
        });
        Flood {
            counters,
            stop,
            thread: Some(thread),
        }
    }

    pub fn open(&self) -> u64 {
        self.counters.open.load(Ordering::Relaxed)
    }

    /// Closes every connection and waits for the flood's thread.
    pub fn stop(mut self) -> Arc<FloodCounters> {
        self.halt();
        self.counters.clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn run(config: FloodConfig, counters: Arc<FloodCounters>, stop: Arc<AtomicBool>) {
    let mut tasks = Vec::new();
    for i in 0..config.identities {
        let delay = config
            .ramp
            .mul_f64(i as f64 / config.identities.max(1) as f64);
        let (config, counters, stop) = (config.clone(), counters.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            identity(i, &config, &counters, &stop).await;
        }));
    }
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each identity sees the flag within 200 ms and drops its connection.
    for task in tasks {
        let _ = task.await;
    }
}

/// One identity: dial until connected, hold until closed or stopped.
async fn identity(
    i: usize,
    config: &FloodConfig,
    counters: &Arc<FloodCounters>,
    stop: &AtomicBool,
) {
    let Ok(builder) = SwarmBuilder::with_new_identity().with_tokio().with_tcp(
        tcp::Config::default(),
        noise::Config::new,
        yamux::Config::default,
    ) else {
        return;
    };
    let mut swarm = builder
        .with_behaviour(|key| Attacker {
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL.to_string(),
                key.public(),
            )),
            streams: libp2p_stream::Behaviour::new(),
        })
        .unwrap_or_else(|never| match never {})
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for n in 0..config.addresses_each {
        let addr: Multiaddr = format!(
            "/ip4/10.{}.{}.{}/tcp/{}",
            (i >> 8) & 0xff,
            i & 0xff,
            n % 250 + 1,
            4000 + n
        )
        .parse()
        .expect("valid multiaddr");
        swarm.add_external_address(addr);
    }
    'dial: loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if swarm.dial(config.target.clone()).is_err() {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(config.redial_after).await;
            continue;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match next(&mut swarm).await {
                Ok(SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                    if config.streams_each > 0 {
                        let control = swarm.behaviour().streams.new_control();
                        tokio::spawn(hold_streams(
                            control,
                            peer_id,
                            config.streams_each,
                            counters.clone(),
                        ));
                    }
                    break 'dial;
                }
                Ok(SwarmEvent::OutgoingConnectionError { .. }) => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(config.redial_after).await;
                    continue 'dial;
                }
                _ => {}
            }
        }
    }
    counters.established.fetch_add(1, Ordering::Relaxed);
    counters.open.fetch_add(1, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        if let Ok(SwarmEvent::ConnectionClosed {
            num_established: 0, ..
        }) = next(&mut swarm).await
        {
            counters.closed_by_target.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// Keeps `count` pairing streams open to `peer`, silent, replacing them every 100 ms: each
/// one beyond the target's concurrent-stream limit is one it drops (and once logged).
/// Ends when the connection does (opening fails).
async fn hold_streams(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    count: usize,
    counters: Arc<FloodCounters>,
) {
    loop {
        let mut held = Vec::with_capacity(count);
        for _ in 0..count {
            match control.open_stream(peer, PAIR_PROTOCOL).await {
                Ok(stream) => {
                    counters.streams.fetch_add(1, Ordering::Relaxed);
                    held.push(stream);
                }
                Err(_) => return,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The swarm's next event, or `Err` after 200 ms (so the stop flag is seen).
async fn next(
    swarm: &mut Swarm<Attacker>,
) -> Result<SwarmEvent<AttackerEvent>, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_millis(200), swarm.select_next_some()).await
}
