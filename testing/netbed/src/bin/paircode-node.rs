//! One paircode node as a process, for tests that need separate hosts (network
//! namespaces) or separate OS processes. Reports JSON lines on stdout:
//!
//! - `{"event":"ready","peer":…,"addrs":[…]}` once listening;
//! - initiator: `{"event":"code","code":"w1 … w12"}` right after, then the outcome;
//! - joiner: waits for a line `join <code words>` on stdin, then the outcome; after a
//!   failure it waits for the next such line;
//! - outcome: `{"event":"completed","elapsed_ms":…,"device":{…}}` or
//!   `{"event":"failed","error":…,"elapsed_ms":…}`; also `discovered` / `progress`.
//!
//! The node keeps running after the outcome until stdin closes, so that its last reply
//! reaches the peer, then shuts down cleanly.
//!
//! paircode-node --runtime tokio|async-std --role initiator|joiner --name NAME
//!               --listen MULTIADDR [--mdns on|off] [--bootstrap MULTIADDR]...
//!               [--join-timeout-ms MS]

use std::io::BufRead;
use std::time::Instant;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use paircode_core::{Code, DeviceIdentity};
use paircode_net::{
    Error, EventStream, FailReason, GenerateOptions, JoinOptions, NodeConfig, NodeEvent,
    PairingEvent, PairingHandle,
};
use paircode_netbed::{device_json, NodeArgsError, Rt};
use serde_json::json;

struct Args {
    runtime: Rt,
    initiator: bool,
    config: NodeConfig,
}

fn parse_args() -> Result<Args, NodeArgsError> {
    let mut args = std::env::args().skip(1);
    let mut runtime = None;
    let mut role = None;
    let mut config = NodeConfig::new(DeviceIdentity::generate(&mut rand_core::OsRng), "node");
    config.listen.clear();
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
    let initiator = match role.as_deref() {
        Some("initiator") => true,
        Some("joiner") => false,
        _ => return Err(NodeArgsError::Required("--role initiator|joiner")),
    };
    Ok(Args {
        runtime: runtime.ok_or(NodeArgsError::Required("--runtime"))?,
        initiator,
        config,
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
            FailReason::Cancelled => "Cancelled",
        },
        Error::Busy => "Busy",
        Error::InvalidName(_) => "InvalidName",
        Error::Transport(_) => "Transport",
        Error::NodeStopped => "NodeStopped",
    }
}

async fn run(args: Args, mut stdin: mpsc::UnboundedReceiver<String>) {
    let node = match args.runtime.start(args.config).await {
        Ok(node) => node,
        Err(e) => return say(json!({"event": "error", "error": e.to_string()})),
    };
    let mut events = node.events();
    let addrs = node.listen_addrs().await.unwrap_or_default();
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    say(json!({"event": "ready", "peer": node.peer_id().to_string(), "addrs": addrs}));

    if args.initiator {
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
    } else {
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
    while stdin.next().await.is_some() {}
    node.shutdown().await;
}

fn main() {
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
