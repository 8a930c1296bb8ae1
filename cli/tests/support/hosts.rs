//! Real `paircode` daemons on hosts of a namespace lab (`paircode_netbed::lab`): one
//! instance per host, named after it, each listening on its host's address only.

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use paircode_netbed::lab::{self, Host, Lab};
use serde_json::Value;

use crate::support::Bed;

/// A line in the test output even when the harness captures `println!` (it does not
/// capture writes to the stderr handle itself): one per scenario, and the skip lines.
pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Daemons and the network they run on. Fields drop in order: the daemons are stopped
/// before the lab kills whatever is left in its namespaces and deletes them.
pub struct Site {
    pub bed: Bed,
    pub lab: Lab,
}

impl Site {
    /// A site, or `None` (after one "skipping: …" line) where namespaces cannot be made.
    pub fn new(scenario: &str) -> Option<Site> {
        if let Some(reason) = lab::skip_reason() {
            log(&format!("skipping: {scenario}: {reason}"));
            return None;
        }
        Some(Site {
            bed: Bed::new(),
            lab: Lab::new(),
        })
    }

    /// Creates the instance (once) and starts its daemon on `host`.
    /// Alice and Bob on one new LAN, daemons running with mDNS on; `impair_bob` gives Bob's
    /// link the means for delay and loss.
    pub fn alice_and_bob(&mut self, impair_bob: bool) -> (Host, Host) {
        let lan = self.lab.lan().unwrap();
        let alice = self.lab.host("alice", lan, false).unwrap();
        let bob = self.lab.host("bob", lan, impair_bob).unwrap();
        self.start(&alice, true, None);
        self.start(&bob, true, None);
        (alice, bob)
    }

    pub fn start(&self, host: &Host, mdns: bool, bootstrap: Option<&str>) {
        if !self.bed.instance_dir(&host.name).join("identity").exists() {
            self.bed.init(&host.name);
        }
        let listen = host.listen_addr();
        let mut args = vec!["--listen", &listen, "--name", &host.name];
        if !mdns {
            args.push("--no-mdns");
        }
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap", b]);
        }
        self.bed.start_in(Some(&host.ns), &host.name, &args);
    }

    /// The daemon's listen address with its peer id: a bootstrap address for others.
    pub fn bootstrap_addr(&self, host: &Host) -> String {
        let addr = self.bed.addr(&host.name);
        let peer = self.bed.peer_id(&host.name);
        if addr.contains("/p2p/") {
            addr
        } else {
            format!("{addr}/p2p/{peer}")
        }
    }

    /// `pair join` on `joiner` with `words`: its output and how long it took.
    pub fn join(&self, joiner: &Host, words: &str) -> (Output, Duration) {
        let started = Instant::now();
        let out = self
            .bed
            .cmd(&joiner.name)
            .args([
                "--json", "network", "pair", "join", "--yes", "--code", words,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("join runs");
        (out, started.elapsed())
    }

    /// Generates on `initiator` (auto-accept), joins from `joiner`; both must succeed.
    /// Returns the time from `join` until both sides had stored the pairing.
    pub fn pair(&self, initiator: &Host, joiner: &Host) -> Duration {
        let (generating, words) = self.bed.generate(&initiator.name, &["--auto-accept"]);
        let (joined, elapsed) = self.join(joiner, &words);
        assert!(
            joined.status.success(),
            "{} could not join {}: {}\n{}",
            joiner.name,
            initiator.name,
            joined.status,
            String::from_utf8_lossy(&joined.stdout)
        );
        let (status, events) = generating.finish();
        assert!(
            status.success(),
            "generate on {} failed: {events:?}",
            initiator.name
        );
        let outcome = events.last().expect("events");
        assert_eq!(outcome["ok"], true, "{outcome}");
        assert!(outcome["result"]["paired"].is_object(), "{outcome}");
        elapsed
    }

    /// `owner`'s list holds `other` under its real peer id and name.
    pub fn lists(&self, owner: &Host, other: &Host) -> bool {
        let peer = self.bed.peer_id(&other.name);
        self.bed
            .devices(&owner.name)
            .iter()
            .any(|d| d["peer_id"] == peer.as_str() && d["name"] == other.name.as_str())
    }

    pub fn assert_paired(&self, a: &Host, b: &Host) {
        assert!(self.lists(a, b), "{} does not list {}", a.name, b.name);
        assert!(self.lists(b, a), "{} does not list {}", b.name, a.name);
    }

    pub fn online(&self, owner: &Host, other: &Host) -> bool {
        let peer = self.bed.peer_id(&other.name);
        self.bed
            .devices(&owner.name)
            .iter()
            .any(|d| d["peer_id"] == peer.as_str() && d["online"] == true)
    }
}

/// A `pair join` running in the background, its JSON lines readable one by one.
pub struct Joining {
    pub child: std::process::Child,
    lines: std::io::BufReader<std::process::ChildStdout>,
    pub seen: Vec<Value>,
}

impl Site {
    pub fn spawn_join(&self, joiner: &Host, words: &str) -> Joining {
        let mut child = self
            .bed
            .cmd(&joiner.name)
            .args([
                "--json", "network", "pair", "join", "--yes", "--code", words,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("join runs");
        let lines = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        Joining {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// No temp file of an interrupted write is left in `host`'s instance directory.
    pub fn no_leftovers(&self, host: &Host) -> bool {
        std::fs::read_dir(self.bed.instance_dir(&host.name))
            .expect("instance dir")
            .filter_map(Result::ok)
            .all(|e| !e.file_name().to_string_lossy().contains(".tmp-"))
    }
}

impl Joining {
    /// Reads lines until one with `"event": event`; panics if the command ends first.
    pub fn wait_for(&mut self, event: &str) -> Value {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            let n = self.lines.read_line(&mut line).expect("read");
            assert!(n > 0, "join ended before {event}: {:?}", self.seen);
            if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                self.seen.push(v.clone());
                if v["event"] == event {
                    return v;
                }
            }
        }
    }

    /// Waits for the command to end: its exit code and the rest of its JSON lines.
    pub fn finish(mut self) -> (Option<i32>, Vec<Value>) {
        use std::io::BufRead;
        let mut line = String::new();
        while self.lines.read_line(&mut line).expect("read") > 0 {
            if let Ok(v) = serde_json::from_str(line.trim()) {
                self.seen.push(v);
            }
            line.clear();
        }
        let status = self.child.wait().expect("join exits");
        (status.code(), self.seen)
    }
}

/// The error a finished command reported in its JSON lines.
pub fn error_in(lines: &[Value]) -> Option<&Value> {
    lines.iter().find_map(|v| v.get("error"))
}
