//! Test support for paircode's networking: start nodes on either runtime, build a private
//! two-host network out of Linux network namespaces, and run nodes there as separate
//! processes (the `paircode-node` binary) that report in JSON lines.
//!
//! Nothing here touches the machine's real interfaces: loopback nodes run with mDNS off,
//! and namespace hosts only have addresses (10.77.x.y) that exist inside them.
//!
//! [`NetBed`] is the fixed two-host bridge; [`lab::Lab`] builds larger networks (several
//! LANs, routers, link faults) and [`hammer`] is a wrong-code attacker for them.
//! [`daemon`] drives real `paircode` daemons through the CLI, on loopback or on lab hosts.

pub mod daemon;
pub mod dht;
mod error;
pub mod flood;
pub mod hammer;
pub mod lab;
pub mod meeting_point;
pub mod wire;

pub use error::{Error, NodeArgsError};

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use paircode_core::PairedDevice;
use paircode_net::{Node, NodeConfig};
use serde_json::{json, Value};

/// Which runtime a node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Tokio,
    AsyncStd,
}

impl Rt {
    pub fn name(self) -> &'static str {
        match self {
            Rt::Tokio => "tokio",
            Rt::AsyncStd => "async-std",
        }
    }

    pub fn parse(name: &str) -> Option<Rt> {
        match name {
            "tokio" => Some(Rt::Tokio),
            "async-std" => Some(Rt::AsyncStd),
            _ => None,
        }
    }

    /// Starts a node. A tokio node needs to be started from within a tokio runtime; an
    /// async-std node runs on async-std's global executor whoever starts it.
    pub async fn start(self, config: NodeConfig) -> Result<Node, paircode_net::Error> {
        match self {
            Rt::Tokio => paircode_tokio::start(config).await,
            Rt::AsyncStd => paircode_async_std::start(config).await,
        }
    }
}

/// A node for 127.0.0.1 with mDNS off: mDNS skips loopback, and must never be switched on
/// on a real network interface.
pub fn loopback_config(name: &str) -> paircode_net::NodeConfig {
    let mut config = paircode_net::NodeConfig::new(
        paircode_core::DeviceIdentity::generate(&mut rand_core::OsRng),
        name,
    );
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")];
    config.mdns = false;
    config
}

/// Two loopback configurations on ports picked up front, each naming the other as its
/// bootstrap peer, so that both nodes can start at the same instant and dial each other.
pub fn crossed_configs() -> (NodeConfig, NodeConfig) {
    let free_port = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port()
    };
    let (mut a, mut b) = (loopback_config("alice"), loopback_config("bob"));
    let (port_a, port_b) = (free_port(), free_port());
    let (id_a, id_b) = (a.identity.peer_id(), b.identity.peer_id());
    for (config, port, other, other_port) in [
        (&mut a, port_a, id_b, port_b),
        (&mut b, port_b, id_a, port_a),
    ] {
        config.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("valid")];
        let other = format!("/ip4/127.0.0.1/tcp/{other_port}/p2p/{other}");
        config.bootstrap = vec![other.parse().expect("valid")];
    }
    (a, b)
}

/// A paired device as JSON, so that both sides' views can be compared across processes.
pub fn device_json(device: &PairedDevice) -> Value {
    json!({
        "peer": device.peer.to_string(),
        "name": device.info.name,
        "role": format!("{:?}", device.role),
        "pairing_secret": hex::encode(device.keys.pairing_secret),
        "initiator_to_joiner": hex::encode(device.keys.initiator_to_joiner),
        "joiner_to_initiator": hex::encode(device.keys.joiner_to_initiator),
        "transcript": hex::encode(device.keys.transcript.0),
    })
}

/// Why namespace tests cannot run here, if they cannot.
pub fn namespace_skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output();
    match uid {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "0" => {}
        _ => return Some("namespace tests need root".into()),
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("namespace tests need the `ip` tool (iproute2)".into()),
    }
}

/// Two hosts, `a` and `b`, on one bridge: the smallest [`lab::Lab`]. Everything is torn
/// down on drop, also when a test panics.
pub struct NetBed {
    pub a: lab::Host,
    pub b: lab::Host,
    /// Names of `a`'s and `b`'s addresses, ready for `/ip4/{}/tcp/0`.
    pub addr_a: String,
    pub addr_b: String,
    _lab: lab::Lab,
}

impl NetBed {
    pub fn new() -> Result<NetBed, Error> {
        let mut lab = lab::Lab::new();
        let lan = lab.lan()?;
        let a = lab.host("a", lan, false)?;
        let b = lab.host("b", lan, false)?;
        Ok(NetBed {
            addr_a: a.addr.to_string(),
            addr_b: b.addr.to_string(),
            a,
            b,
            _lab: lab,
        })
    }
}

/// One `paircode-node` process, talking JSON lines on stdout and taking commands on stdin.
/// Killed on drop.
pub struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    pub label: String,
    /// Every event received so far, in order.
    pub seen: Vec<Value>,
}

/// Arguments of one `paircode-node` run.
#[derive(Debug, Clone)]
pub struct NodeArgs {
    pub runtime: Rt,
    pub role: &'static str,
    pub name: String,
    pub listen: String,
    pub mdns: bool,
    pub bootstrap: Vec<String>,
    /// The joiner's search timeout; the node's default if `None`.
    pub join_timeout_ms: Option<u64>,
    /// Meeting points (`--relay`). AutoNAT then trusts private addresses too: every lab
    /// address is private.
    pub relays: Vec<String>,
    /// Further `paircode-node` flags, e.g. `--identity HEX`, `--paired PEER=HEX`.
    pub extra: Vec<String>,
}

impl NodeProcess {
    /// Runs `binary` inside `netns` (or directly if `None`).
    pub fn spawn(binary: &str, netns: Option<&str>, args: &NodeArgs) -> NodeProcess {
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, binary]);
                c
            }
            None => Command::new(binary),
        };
        command
            .args(["--runtime", args.runtime.name(), "--role", args.role])
            .args(["--name", &args.name, "--listen", &args.listen])
            .args(["--mdns", if args.mdns { "on" } else { "off" }]);
        for b in &args.bootstrap {
            command.args(["--bootstrap", b]);
        }
        for relay in &args.relays {
            command.args(["--relay", relay]);
        }
        if !args.relays.is_empty() {
            command.args(["--autonat-global-only", "off"]);
        }
        command.args(&args.extra);
        if let Some(ms) = args.join_timeout_ms {
            command.args(["--join-timeout-ms", &ms.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn paircode-node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let label = format!("{}/{}/{}", args.name, args.runtime.name(), args.role);
        let thread_label = label.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("[{thread_label}] {line}"),
                }
            }
        });
        NodeProcess {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            label,
            seen: Vec::new(),
        }
    }

    /// The next reported event; panics after `timeout` (a hung node must fail the test,
    /// not hang it).
    pub fn next(&mut self, timeout: Duration) -> Value {
        match self.lines.recv_timeout(timeout) {
            Ok(v) => {
                self.seen.push(v.clone());
                v
            }
            Err(e) => panic!("[{}] no event within {timeout:?}: {e}", self.label),
        }
    }

    /// Waits for an event named `event`, skipping others (progress, discovery).
    pub fn expect(&mut self, event: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self.next(left);
            if v["event"] == event {
                return v;
            }
            if v["event"] == "failed" || v["event"] == "error" {
                panic!("[{}] expected {event}, got {v}", self.label);
            }
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to node");
        stdin.flush().expect("flush to node");
    }

    /// Asks the node to shut down cleanly and waits for it.
    pub fn quit(mut self) {
        drop(self.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
