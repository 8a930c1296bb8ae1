//! A test bed of real `paircode` processes on loopback (mDNS off, DHT bootstrap), each
//! instance in a temporary data directory that disappears with the bed.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery";
pub const SCHEMA: &str = "paircode/1";
const BIN: &str = env!("CARGO_BIN_EXE_paircode");

pub struct Bed {
    pub dir: tempfile::TempDir,
    started: Mutex<Vec<String>>,
}

impl Bed {
    pub fn new() -> Self {
        Bed {
            dir: tempfile::Builder::new()
                .prefix("pc")
                .tempdir_in("/tmp")
                .expect("temp dir"),
            started: Mutex::new(Vec::new()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn instance_dir(&self, instance: &str) -> PathBuf {
        self.dir.path().join(instance)
    }

    /// A `paircode --instance NAME` command with the bed's data dir and the password in the
    /// environment.
    pub fn cmd(&self, instance: &str) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--instance")
            .arg(instance)
            .env("PAIRCODE_DATA_DIR", self.dir.path())
            .env("PAIRCODE_PASSWORD", PASSWORD)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Like [`Bed::cmd`], run inside network namespace `netns` (`ip netns exec`) if given.
    pub fn cmd_in(&self, netns: Option<&str>, instance: &str) -> Command {
        let Some(ns) = netns else {
            return self.cmd(instance);
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, BIN])
            .arg("--instance")
            .arg(instance)
            .env("PAIRCODE_DATA_DIR", self.dir.path())
            .env("PAIRCODE_PASSWORD", PASSWORD)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// `paircode start ARGS` inside `netns`; the daemon is stopped when the bed drops.
    pub fn start_in(&self, netns: Option<&str>, instance: &str, args: &[&str]) {
        let out = self
            .cmd_in(netns, instance)
            .arg("start")
            .args(args)
            .output()
            .expect("paircode runs");
        assert!(
            out.status.success(),
            "paircode --instance {instance} start {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        self.started.lock().unwrap().push(instance.to_string());
    }

    /// Forgets a daemon that is known to be gone (killed by the test).
    pub fn forget(&self, instance: &str) {
        self.started.lock().unwrap().retain(|i| i != instance);
    }

    pub fn run(&self, instance: &str, args: &[&str]) -> Output {
        self.cmd(instance)
            .args(args)
            .output()
            .expect("paircode runs")
    }

    pub fn ok(&self, instance: &str, args: &[&str]) -> String {
        let out = self.run(instance, args);
        assert!(
            out.status.success(),
            "paircode --instance {instance} {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// The `result` of a successful `--json` command, checked to be a proper envelope.
    pub fn json(&self, instance: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let envelope: Value =
            serde_json::from_str(self.ok(instance, &all).trim()).expect("one JSON value");
        assert_eq!(envelope["schema"], SCHEMA, "{envelope}");
        assert_eq!(envelope["ok"], true, "{envelope}");
        envelope["result"].clone()
    }

    /// The `error` of a failed `--json` command with its exit code, checked to be a proper
    /// envelope whose `exit` is the process's.
    pub fn json_error(&self, instance: &str, args: &[&str]) -> (Value, Option<i32>) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(instance, &all);
        let text = String::from_utf8_lossy(&out.stdout);
        let envelope: Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("not one JSON value ({e}): {text:?} {}", stderr(&out)));
        assert_eq!(envelope["schema"], SCHEMA, "{envelope}");
        assert_eq!(envelope["ok"], false, "{envelope}");
        let error = envelope["error"].clone();
        assert_eq!(
            error["exit"].as_i64().map(|c| c as i32),
            out.status.code(),
            "{envelope}"
        );
        assert!(
            error["kind"].is_string() && error["message"].is_string(),
            "{envelope}"
        );
        (error, out.status.code())
    }

    pub fn init(&self, instance: &str) {
        self.ok(instance, &["network", "init"]);
    }

    /// Starts a daemon on loopback with mDNS off, optionally bootstrapped from another.
    pub fn start(&self, instance: &str, bootstrap_from: Option<&str>) {
        let mut args = vec![
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--name",
            instance,
        ];
        let addr;
        if let Some(other) = bootstrap_from {
            addr = self.addr(other);
            args.extend(["--bootstrap", &addr]);
        }
        self.ok(instance, &args);
        self.started.lock().unwrap().push(instance.to_string());
    }

    pub fn stop(&self, instance: &str) {
        self.ok(instance, &["stop"]);
        self.started.lock().unwrap().retain(|i| i != instance);
    }

    pub fn addr(&self, instance: &str) -> String {
        let status = self.json(instance, &["status"]);
        status["listen"][0]
            .as_str()
            .expect("a listen address")
            .to_string()
    }

    pub fn pid(&self, instance: &str) -> u32 {
        let text = std::fs::read_to_string(self.instance_dir(instance).join("daemon.pid"))
            .expect("pid file");
        text.trim().parse().expect("pid")
    }

    /// Alice and Bob initialised and running, Bob bootstrapped from Alice.
    pub fn alice_and_bob() -> Self {
        let bed = Bed::new();
        bed.init("alice");
        bed.init("bob");
        bed.start("alice", None);
        bed.start("bob", Some("alice"));
        bed
    }

    /// Starts `pair generate` on `instance` and returns it with the code it printed.
    pub fn generate(&self, instance: &str, extra: &[&str]) -> (Generating, String) {
        let mut cmd = self.cmd(instance);
        cmd.args(["--json", "network", "pair", "generate"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("generate runs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let first = read_json(&mut lines);
        assert_eq!(first["schema"], SCHEMA, "{first}");
        assert_eq!(first["event"], "code", "{first}");
        let words = first["words"]
            .as_str()
            .unwrap_or_else(|| panic!("no code in {first}"))
            .to_string();
        (Generating { child, lines }, words)
    }

    /// Starts `--json network pair join` without `--yes`: its confirm prompt is answered
    /// through the returned handle, as `generate`'s is.
    pub fn join_asking(&self, instance: &str, words: &str) -> Generating {
        let mut cmd = self.cmd(instance);
        cmd.args(["--json", "network", "pair", "join", "--code", words])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("join runs");
        let lines = BufReader::new(child.stdout.take().expect("stdout"));
        Generating { child, lines }
    }

    pub fn devices(&self, instance: &str) -> Vec<Value> {
        self.json(instance, &["network", "devices"])
            .as_array()
            .expect("a list")
            .clone()
    }

    pub fn peer_id(&self, instance: &str) -> String {
        self.json(instance, &["status"])["peer_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Polls until `check` holds (daemons update presence asynchronously).
    pub fn eventually(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting until {what}");
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for instance in self.started.lock().unwrap().clone() {
            let stopped = self.run(&instance, &["stop"]).status.success();
            if !stopped {
                if let Ok(text) =
                    std::fs::read_to_string(self.instance_dir(&instance).join("daemon.pid"))
                {
                    let _ = Command::new("kill").arg("-9").arg(text.trim()).status();
                }
            }
        }
    }
}

pub struct Generating {
    pub child: Child,
    lines: BufReader<ChildStdout>,
}

impl Generating {
    pub fn next(&mut self) -> Value {
        read_json(&mut self.lines)
    }

    pub fn answer(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("answer written");
    }

    pub fn finish(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        let mut rest = Vec::new();
        let mut line = String::new();
        while self.lines.read_line(&mut line).expect("read") > 0 {
            if let Ok(v) = serde_json::from_str(line.trim()) {
                rest.push(v);
            }
            line.clear();
        }
        (self.child.wait().expect("generate exits"), rest)
    }
}

fn read_json(lines: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    lines.read_line(&mut line).expect("read");
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stops an instance started outside [`Bed::start`] when the test ends, however it ends.
pub struct StopOnDrop<'a>(pub &'a Bed, pub &'a str);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(self.1, &["stop"]);
    }
}
