//! One paircode node as a process, for tests that need separate hosts (network
//! namespaces) or separate OS processes. Reports JSON lines on stdout:
//!
//! - `{"event":"ready","peer":…,"addrs":[…]}` once listening;
//! - initiator: `{"event":"code","code":"w1 … w12"}` right after, then the outcome;
//! - joiner: waits for a line `join <code words>` on stdin, then the outcome; after a
//!   failure it waits for the next such line;
//! - outcome: `{"event":"completed","elapsed_ms":…,"device":{…}}` or
//!   `{"event":"failed","error":…,"elapsed_ms":…}`; also `discovered` / `progress`.
//! - with meeting points (`--relay`), once each holds a reservation or is found
//!   unreachable (at most 20 s), before anything else happens:
//!   `{"event":"meeting_points","elapsed_ms":…,"states":["reserved"|"unreachable"|…]}`;
//! - after the outcome, a line `path <peer id>` on stdin is answered with
//!   `{"event":"path","peer":…,"path":"direct"|"relayed"|null,"relayed_connections":N}`,
//!   and paired devices coming online are reported as `{"event":"online","peer":…}`;
//!   `paired <peer id>` adds the peer to the paired set (as a daemon does after pairing),
//!   answered with `{"event":"paired"}`; `echo <peer id>` opens a stream to it
//!   (`Node::connect`), which its node echoes back, and answers
//!   `{"event":"echo","ok":…,"path":…,"relayed_connections":N}` (the path right after);
//! - role `device` pairs with no one: with `--identity HEX` (its 32-byte secret) and
//!   `--paired PEER=PAIRING_SECRET_HEX` it is a restarted device that looks for the
//!   devices it paired with (across networks through the meeting points' rendezvous).
//!
//! The node keeps running after the outcome until stdin closes, so that its last reply
//! reaches the peer, then shuts down cleanly.
//!
//! paircode-node --runtime tokio|async-std --role initiator|joiner --name NAME
//!               --listen MULTIADDR [--mdns on|off] [--bootstrap MULTIADDR]...
//!               [--join-timeout-ms MS] [--relay MULTIADDR]... [--autonat-global-only on|off]
//!               [--identity HEX] [--paired PEER=HEX]...

use std::io::BufRead;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use std::str::FromStr;

use paircode_core::{Code, DeviceIdentity, PeerId};
use paircode_net::{
    Error, EventStream, FailReason, GenerateOptions, JoinOptions, MeetingPointState, Node,
    NodeConfig, NodeEvent, PairingEvent, PairingHandle,
};
use paircode_netbed::{device_json, NodeArgsError, Rt};
use serde_json::json;

struct Args {
    runtime: Rt,
    role: Role,
    config: NodeConfig,
    /// Devices paired before this run, with their pairing secrets.
    paired: Vec<(PeerId, [u8; 32])>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Joiner,
    Device,
}

fn hex32(value: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(value).map_err(|e| e.to_string())?;
    bytes
        .try_into()
        .map_err(|_| "expected 32 bytes in hex".to_owned())
}

fn parse_args() -> Result<Args, NodeArgsError> {
    let mut args = std::env::args().skip(1);
    let mut runtime = None;
    let mut role = None;
    let mut config = NodeConfig::new(DeviceIdentity::generate(&mut rand_core::OsRng), "node");
    config.listen.clear();
    let mut paired = Vec::new();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| NodeArgsError::MissingValue(flag.clone()))?;
        let bad = |reason: String| NodeArgsError::BadValue {
            flag: flag.clone(),
            value: value.clone(),
            reason,
        };
        match flag.as_str() {
            "--runtime" => {
                runtime = Some(
                    Rt::parse(&value)
                        .ok_or_else(|| NodeArgsError::UnknownRuntime(value.clone()))?,
                )
            }
            "--role" => role = Some(value),
            "--name" => config.device_name = value,
            "--listen" => config
                .listen
                .push(value.parse().map_err(|e| bad(format!("{e}")))?),
            "--bootstrap" => config
                .bootstrap
                .push(value.parse().map_err(|e| bad(format!("{e}")))?),
            "--mdns" => config.mdns = value == "on",
            "--relay" => config
                .relays
                .push(value.parse().map_err(|e| bad(format!("{e}")))?),
            "--autonat-global-only" => config.autonat_only_global_ips = value == "on",
            "--identity" => {
                config.identity = DeviceIdentity::from_secret(hex32(&value).map_err(bad)?)
            }
            "--paired" => {
                let (peer, secret) = value
                    .split_once('=')
                    .ok_or_else(|| bad("expected PEER=HEX".to_owned()))?;
                let peer = libp2p::PeerId::from_str(peer).map_err(|e| bad(e.to_string()))?;
                let peer = PeerId::from(peer);
                paired.push((peer, hex32(secret).map_err(bad)?));
            }
            "--join-timeout-ms" => {
                let ms = value.parse().map_err(|e| bad(format!("{e}")))?;
                config.pairing.join_timeout = std::time::Duration::from_millis(ms);
            }
            _ => return Err(NodeArgsError::UnknownFlag(flag)),
        }
    }
    if config.listen.is_empty() {
        return Err(NodeArgsError::Required("--listen"));
    }
    config.pairing.auto_accept = true;
    let role = match role.as_deref() {
        Some("initiator") => Role::Initiator,
        Some("joiner") => Role::Joiner,
        Some("device") => Role::Device,
        _ => return Err(NodeArgsError::Required("--role initiator|joiner|device")),
    };
    Ok(Args {
        runtime: runtime.ok_or(NodeArgsError::Required("--runtime"))?,
        role,
        config,
        paired,
    })
}

fn say(value: serde_json::Value) {
    println!("{value}");
}

/// Reports a session's progress and outcome; true if it completed.
async fn report(handle: PairingHandle, events: &mut EventStream, started: Instant) -> bool {
    let outcome = handle.result().fuse();
    futures::pin_mut!(outcome);
    let result = loop {
        futures::select! {
            result = &mut outcome => break result,
            event = events.next() => match event {
                Some(NodeEvent::PeerDiscovered { peer, via }) => say(json!({
                    "event": "discovered", "peer": peer.to_string(), "via": format!("{via:?}"),
                })),
                Some(NodeEvent::Pairing(PairingEvent::Contacting { peer })) => say(json!({
                    "event": "progress", "contacting": peer.to_string(),
                })),
                _ => {}
            },
        }
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(device) => {
            say(json!({
                "event": "completed", "elapsed_ms": elapsed_ms, "device": device_json(&device),
            }));
            true
        }
        Err(e) => {
            say(json!({
                "event": "failed", "error": e.to_string(), "kind": error_kind(&e),
                "elapsed_ms": elapsed_ms,
            }));
            false
        }
    }
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Pairing(reason) => match reason {
            FailReason::NoDeviceAnswered => "NoDeviceAnswered",
            FailReason::CodeExpired => "CodeExpired",
            FailReason::Rejected { .. } => "Rejected",
            FailReason::Declined { .. } => "Declined",
            FailReason::NoAnswer { .. } => "NoAnswer",
            FailReason::ConfirmTimeout { .. } => "ConfirmTimeout",
            FailReason::NotStored { .. } => "NotStored",
            FailReason::Cancelled => "Cancelled",
        },
        Error::Busy => "Busy",
        Error::InvalidName(_) => "InvalidName",
        Error::Transport(_) => "Transport",
        Error::NodeStopped => "NodeStopped",
    }
}

fn state_name(state: &MeetingPointState) -> &'static str {
    match state {
        MeetingPointState::Connecting => "connecting",
        MeetingPointState::Reserving => "reserving",
        MeetingPointState::Reserved { .. } => "reserved",
        MeetingPointState::Unreachable { .. } => "unreachable",
    }
}

/// Waits until every meeting point holds a reservation or was found unreachable (at most
/// 20 s), and reports their states.
async fn settle_meeting_points(node: &Node, started: Instant) {
    let deadline = started + Duration::from_secs(20);
    loop {
        let Ok(reach) = node.reach().await else {
            return;
        };
        let settled = reach.meeting_points.iter().all(|mp| {
            matches!(
                mp.state,
                MeetingPointState::Reserved { .. } | MeetingPointState::Unreachable { .. }
            )
        });
        if settled || Instant::now() >= deadline {
            let states: Vec<&str> = reach
                .meeting_points
                .iter()
                .map(|mp| state_name(&mp.state))
                .collect();
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            return say(json!({
                "event": "meeting_points", "elapsed_ms": elapsed_ms, "states": states,
            }));
        }
        // async-io's timer runs on its own thread: it works under either runtime.
        async_std::task::sleep(Duration::from_millis(20)).await;
    }
}

/// The protocol of the `echo` command's streams.
const ECHO: &str = "/paircode-node/echo/1";

/// How `peer` is reached now, and over how many relayed connections.
async fn path_of(node: &Node, peer: &str) -> (Option<&'static str>, usize) {
    match node.reach().await {
        Ok(reach) => {
            let found = reach
                .connections
                .iter()
                .find(|(p, _)| p.to_string() == peer)
                .map(|(p, path)| (path.as_str(), reach.relayed_connections(p)));
            match found {
                Some((path, relayed)) => (Some(path), relayed),
                None => (None, 0),
            }
        }
        Err(_) => (None, 0),
    }
}

/// Opens a stream to `peer`, sends a few bytes and reads them back.
async fn echo(node: &Node, peer: &PeerId) -> Result<(), String> {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let mut stream = node.connect(peer, ECHO).await.map_err(|e| e.to_string())?;
    stream.write_all(b"ping").await.map_err(|e| e.to_string())?;
    stream.close().await.map_err(|e| e.to_string())?;
    let mut back = Vec::new();
    stream
        .read_to_end(&mut back)
        .await
        .map_err(|e| e.to_string())?;
    match back == b"ping" {
        true => Ok(()),
        false => Err(format!("echoed {back:?}")),
    }
}

/// Answers `path`, `paired` and `echo` lines, echoes streams, and reports paired devices
/// coming online, until stdin closes.
async fn serve(node: &Node, events: &mut EventStream, stdin: &mut mpsc::UnboundedReceiver<String>) {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let mut incoming = node.accept(ECHO).expect("the echo protocol is free").fuse();
    loop {
        let line = futures::select! {
            line = stdin.next() => match line {
                Some(line) => line,
                None => return,
            },
            event = events.next() => {
                if let Some(NodeEvent::PairedOnline(peer)) = event {
                    say(json!({"event": "online", "peer": peer.to_string()}));
                }
                continue;
            }
            stream = incoming.next() => {
                if let Some((_, mut stream)) = stream {
                    let mut data = Vec::new();
                    if stream.read_to_end(&mut data).await.is_ok() {
                        let _ = stream.write_all(&data).await;
                        let _ = stream.close().await;
                    }
                }
                continue;
            }
        };
        let (command, peer) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let peer = peer.trim();
        match command {
            "path" => {
                let (path, relayed) = path_of(node, peer).await;
                say(
                    json!({"event": "path", "peer": peer, "path": path, "relayed_connections": relayed}),
                );
            }
            "paired" => {
                if let Ok(peer) = libp2p::PeerId::from_str(peer) {
                    let _ = node.add_paired(PeerId::from(peer));
                }
                say(json!({"event": "paired"}));
            }
            "echo" => {
                let result = match libp2p::PeerId::from_str(peer) {
                    Ok(device) => echo(node, &PeerId::from(device)).await,
                    Err(e) => Err(e.to_string()),
                };
                let (path, relayed) = path_of(node, peer).await;
                say(json!({
                    "event": "echo",
                    "ok": result.is_ok(),
                    "error": result.err(),
                    "path": path,
                    "relayed_connections": relayed,
                }));
            }
            _ => {}
        }
    }
}

async fn run(args: Args, mut stdin: mpsc::UnboundedReceiver<String>) {
    let has_relays = !args.config.relays.is_empty();
    let node = match args.runtime.start(args.config).await {
        Ok(node) => node,
        Err(e) => return say(json!({"event": "error", "error": e.to_string()})),
    };
    let mut events = node.events();
    let addrs = node.listen_addrs().await.unwrap_or_default();
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    say(json!({"event": "ready", "peer": node.peer_id().to_string(), "addrs": addrs}));
    // As a daemon does: the paired set first, then whatever else.
    for (peer, pairing_secret) in &args.paired {
        let secret = paircode_core::export_key(
            pairing_secret,
            &node.peer_id(),
            peer,
            paircode_net::RENDEZVOUS_LABEL,
        );
        let _ = node.add_paired(peer.clone());
        let _ = node.set_rendezvous(peer.clone(), secret);
    }
    if has_relays {
        settle_meeting_points(&node, Instant::now()).await;
    }

    if args.role == Role::Initiator {
        let options = GenerateOptions {
            auto_accept: true,
            ttl: None,
        };
        match node.generate(options).await {
            Ok((code, handle)) => {
                say(json!({"event": "code", "code": code.words().as_str()}));
                report(handle, &mut events, Instant::now()).await;
            }
            Err(e) => say(json!({"event": "error", "error": e.to_string()})),
        }
    } else if args.role == Role::Joiner {
        // A failed join leaves the node up for another attempt.
        while let Some(line) = stdin.next().await {
            let Some(words) = line.strip_prefix("join ") else {
                continue;
            };
            let code = match Code::parse(words) {
                Ok(code) => code,
                Err(e) => {
                    say(json!({"event": "error", "error": e.to_string()}));
                    continue;
                }
            };
            let started = Instant::now();
            match node
                .start_join(&code, JoinOptions { auto_accept: true })
                .await
            {
                Ok(handle) => {
                    if report(handle, &mut events, started).await {
                        break;
                    }
                }
                Err(e) => say(json!({"event": "error", "error": e.to_string()})),
            }
        }
    }
    serve(&node, &mut events, &mut stdin).await;
    node.shutdown().await;
}

fn main() {
    // Logs to stderr when asked (`PAIRCODE_NODE_LOG=paircode_net=debug`).
    if let Ok(filter) = std::env::var("PAIRCODE_NODE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("paircode-node: {e}");
            std::process::exit(2);
        }
    };
    let (tx, rx) = mpsc::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.unbounded_send(line).is_err() {
                break;
            }
        }
    });
    match args.runtime {
        Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(run(args, rx)),
        Rt::AsyncStd => async_std::task::block_on(run(args, rx)),
    }
}
