//! Pairing across hosts, measured with the real `paircode` daemon and CLI on network
//! namespace hosts (`paircode_netbed::lab`), side by side with Magic Wormhole exchanging a
//! code on loopback against its own local mailbox server. Prints a table and writes it to
//! BENCHMARKS.md under "## Across hosts (issue 6)".
//!
//! ```sh
//! cargo build --release -p paircode-cli
//! sudo -E cargo run --release -p paircode-bench -- [--runs 50] [--cold 10] [--no-write]
//! ```
//!
//! Needs root and iproute2 (namespaces), and the release `paircode` binary next to this
//! one (or `PAIRCODE_BIN`). Wormhole is installed into a venv under
//! ~/.cache/paircode-bench; if that fails the table says so instead of giving a number.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use paircode_netbed::lab::{self, Host, Impairment, Lab, LabError};
use serde_json::Value;

const PASSWORD: &str = "bench password";
const HEADING: &str = "## Across hosts (issue 6)";

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("`{command}` failed: {detail}")]
    Paircode { command: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// `paircode --instance NAME`, with the bench's data dir and password, on host `ns`.
fn command(bin: &Path, dir: &Path, ns: Option<&str>, instance: &str) -> Command {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(["--instance", instance])
        .env("PAIRCODE_DATA_DIR", dir)
        .env("PAIRCODE_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn run_ok(
    bin: &Path,
    dir: &Path,
    ns: Option<&str>,
    instance: &str,
    args: &[&str],
) -> Result<String, BenchError> {
    let out: Output = command(bin, dir, ns, instance)
        .args(args)
        .output()
        .map_err(io("running paircode"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(BenchError::Paircode {
        command: format!("paircode --instance {instance} {}", args.join(" ")),
        detail: format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// Starts `host`'s daemon (mDNS on, listening on the host's address); returns once it is
/// ready.
fn start_daemon(bin: &Path, dir: &Path, host: &Host) -> Result<(), BenchError> {
    let listen = host.listen_addr();
    let args = ["start", "--listen", &listen, "--name", &host.name];
    run_ok(bin, dir, Some(&host.ns), &host.name, &args).map(|_| ())
}

/// When the initiator reported the pairing stored, or what it reported instead.
type Outcome = mpsc::Receiver<Result<Instant, String>>;

/// Warm and cold samples in milliseconds, and the idle daemon's RSS in KiB.
struct Measured {
    warm: Vec<f64>,
    cold: Vec<f64>,
    rss_kib: Option<u64>,
}

/// Real daemons, one instance per lab host, all in one data directory.
struct Daemons {
    bin: PathBuf,
    dir: PathBuf,
    started: Vec<String>,
}

impl Daemons {
    fn new(bin: &Path, tag: &str) -> Result<Daemons, BenchError> {
        // Short, so the socket path stays within the 107 bytes Unix sockets allow.
        let dir = PathBuf::from(format!("/tmp/pcb{}{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io(dir.display().to_string()))?;
        Ok(Daemons {
            bin: bin.to_owned(),
            dir,
            started: Vec::new(),
        })
    }

    fn cmd(&self, ns: Option<&str>, instance: &str) -> Command {
        command(&self.bin, &self.dir, ns, instance)
    }

    fn ok(&self, ns: Option<&str>, instance: &str, args: &[&str]) -> Result<String, BenchError> {
        run_ok(&self.bin, &self.dir, ns, instance, args)
    }

    fn init(&self, host: &Host) -> Result<(), BenchError> {
        self.ok(None, &host.name, &["network", "init"]).map(|_| ())
    }

    fn start(&mut self, host: &Host) -> Result<(), BenchError> {
        start_daemon(&self.bin, &self.dir, host)?;
        self.started.push(host.name.clone());
        Ok(())
    }

    fn stop(&mut self, host: &Host) -> Result<(), BenchError> {
        self.ok(None, &host.name, &["stop"])?;
        self.started.retain(|n| *n != host.name);
        Ok(())
    }

    fn status(&self, host: &Host) -> Result<Value, BenchError> {
        let text = self.ok(None, &host.name, &["--json", "status"])?;
        let envelope: Value =
            serde_json::from_str(text.trim()).map_err(|e| BenchError::Setup(e.to_string()))?;
        Ok(envelope["result"].clone())
    }

    /// Starts `generate --auto-accept` on `initiator`: the code, and a channel that
    /// receives the instant the initiator reported the pairing stored (or an error).
    fn generate(&self, initiator: &Host) -> Result<(Child, String, Outcome), BenchError> {
        let mut child = self
            .cmd(None, &initiator.name)
            .args(["--json", "network", "pair", "generate", "--auto-accept"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("running paircode generate"))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped"));
        let mut first = String::new();
        lines
            .read_line(&mut first)
            .map_err(io("reading the code"))?;
        let words = serde_json::from_str::<Value>(first.trim())
            .ok()
            .and_then(|v| v["words"].as_str().map(str::to_owned))
            .ok_or_else(|| BenchError::Setup(format!("no code from generate: {first:?}")))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                // The envelope that ends the command: paired, or the error.
                if v["ok"] == true {
                    let _ = tx.send(Ok(Instant::now()));
                    return;
                }
                if v["ok"] == false {
                    let _ = tx.send(Err(line));
                    return;
                }
            }
            let _ = tx.send(Err("generate ended without an outcome".into()));
        });
        Ok((child, words, rx))
    }

    /// One pairing, `join` started at the returned start instant; the time until both
    /// sides had stored it.
    fn pair(&self, initiator: &Host, joiner: &Host) -> Result<Duration, BenchError> {
        let (mut child, words, paired) = self.generate(initiator)?;
        let started = Instant::now();
        let joined = self.ok(
            None,
            &joiner.name,
            &[
                "--json", "network", "pair", "join", "--yes", "--code", &words,
            ],
        );
        let joined_at = Instant::now();
        let stored = paired.recv_timeout(Duration::from_secs(60));
        let _ = child.wait();
        joined?;
        let stored_at = match stored {
            Ok(Ok(at)) => at,
            Ok(Err(e)) => return Err(BenchError::Setup(format!("initiator: {e}"))),
            Err(_) => return Err(BenchError::Setup("initiator never finished".into())),
        };
        Ok(joined_at.max(stored_at) - started)
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for name in self.started.clone() {
            let _ = self.ok(None, &name, &["stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// p50, p95 and max of samples in milliseconds.
fn summary(samples: &[f64]) -> (f64, f64, f64) {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| s[((s.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), s[s.len() - 1])
}

struct Row {
    case: String,
    runs: usize,
    figures: Result<(f64, f64, f64), String>,
    goal: &'static str,
}

impl Row {
    fn new(case: &str, samples: Result<Vec<f64>, BenchError>, goal: &'static str) -> Row {
        let runs = samples.as_ref().map_or(0, Vec::len);
        Row {
            case: case.to_owned(),
            runs,
            figures: samples.map(|s| summary(&s)).map_err(|e| e.to_string()),
            goal,
        }
    }

    fn markdown(&self) -> String {
        match &self.figures {
            Ok((p50, p95, max)) => format!(
                "| {} | {} | {p50:.1} | {p95:.1} | {max:.1} | {} |",
                self.case, self.runs, self.goal
            ),
            Err(e) => format!("| {} | – | – | – | – | {} ({e}) |", self.case, self.goal),
        }
    }
}

struct Options {
    runs: usize,
    cold: usize,
    write: bool,
}

fn parse_options() -> Result<Options, BenchError> {
    let mut o = Options {
        runs: 50,
        cold: 10,
        write: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = || {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| BenchError::Setup(format!("{a} needs a number")))
        };
        match a.as_str() {
            "--runs" => o.runs = number()?,
            "--cold" => o.cold = number()?,
            "--no-write" => o.write = false,
            _ => return Err(BenchError::Setup(format!("unknown argument {a}"))),
        }
    }
    Ok(o)
}

fn paircode_bin() -> Result<PathBuf, BenchError> {
    if let Some(p) = std::env::var_os("PAIRCODE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(io("locating this program"))?;
    let bin = exe.with_file_name("paircode");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(BenchError::Setup(format!(
            "{} not found: run `cargo build --release -p paircode-cli` first",
            bin.display()
        )))
    }
}

/// Two hosts on one bridge, both daemons up, mDNS on: `runs` warm pairings (after one
/// unmeasured one) and `cold` cold ones, with `impairment` on bob's link.
fn bridge(
    bin: &Path,
    tag: &str,
    impairment: Impairment,
    runs: usize,
    cold: usize,
) -> Result<Measured, BenchError> {
    let mut lab = Lab::new();
    let lan = lab.lan()?;
    let alice = lab.host("alice", lan, false)?;
    let bob = lab.host("bob", lan, impairment != Impairment::default())?;
    let mut d = Daemons::new(bin, tag)?;
    d.init(&alice)?;
    d.init(&bob)?;
    d.start(&alice)?;
    d.start(&bob)?;
    if impairment != Impairment::default() {
        lab.impair(&bob, impairment)?;
    }
    d.pair(&alice, &bob)?;
    let mut warm = Vec::new();
    for _ in 0..runs {
        warm.push(d.pair(&alice, &bob)?.as_secs_f64() * 1000.0);
    }
    // Idle: no session, nothing to do but stay reachable for a few seconds.
    std::thread::sleep(Duration::from_secs(3));
    let rss = d.status(&alice)?["pid"].as_u64().and_then(vm_rss_kib);
    let mut cold_samples = Vec::new();
    for _ in 0..cold {
        d.stop(&alice)?;
        d.stop(&bob)?;
        let started = Instant::now();
        // Both daemons start at the same moment, as two machines switched on together.
        let bob_up = {
            let (bin, dir, bob) = (d.bin.clone(), d.dir.clone(), bob.clone());
            std::thread::spawn(move || start_daemon(&bin, &dir, &bob))
        };
        let alice_up = start_daemon(&d.bin, &d.dir, &alice);
        let bob_up = bob_up.join().expect("start thread");
        d.started.extend([alice.name.clone(), bob.name.clone()]);
        alice_up?;
        bob_up?;
        let (mut child, words, paired) = d.generate(&alice)?;
        d.ok(
            None,
            &bob.name,
            &[
                "--json", "network", "pair", "join", "--yes", "--code", &words,
            ],
        )?;
        let joined_at = Instant::now();
        let stored = paired
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| BenchError::Setup("initiator never finished".into()))?
            .map_err(BenchError::Setup)?;
        let _ = child.wait();
        cold_samples.push((joined_at.max(stored) - started).as_secs_f64() * 1000.0);
    }
    Ok(Measured {
        warm,
        cold: cold_samples,
        rss_kib: rss,
    })
}

fn vm_rss_kib(pid: u64) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn venv_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/paircode-bench/venv")
}

fn install_wormhole() -> Result<PathBuf, BenchError> {
    let venv = venv_dir();
    let bin = venv.join("bin");
    if bin.join("wormhole").exists() && bin.join("twist").exists() {
        return Ok(bin);
    }
    let step = |cmd: &mut Command, what: &str| -> Result<(), BenchError> {
        let out = cmd.output().map_err(io(what.to_owned()))?;
        if out.status.success() {
            Ok(())
        } else {
            let tail: String = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_owned();
            Err(BenchError::Setup(format!("{what} failed: {tail}")))
        }
    };
    step(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating the venv",
    )?;
    step(
        Command::new(bin.join("pip")).args([
            "install",
            "-q",
            "magic-wormhole",
            "magic-wormhole-mailbox-server",
        ]),
        "pip install magic-wormhole",
    )?;
    Ok(bin)
}

/// `runs` text exchanges between `wormhole send` and `wormhole receive`, started together
/// with a known code, against a mailbox server on 127.0.0.1 — all inside `unshare -n`, a
/// network namespace with nothing but loopback, so no packet can leave the machine.
fn wormhole(runs: usize) -> Result<Vec<f64>, BenchError> {
    let bin = install_wormhole()?;
    let work = PathBuf::from(format!("/tmp/pcbw{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io("wormhole work dir"))?;
    let script = format!(
        r#"set -eu
cd {work}
ip link set lo up
B={bin}
"$B/twist" wormhole-mailbox --port tcp:4000:interface=127.0.0.1 >server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for i in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/4000) 2>/dev/null && break
  sleep 0.1
done
W="$B/wormhole --relay-url ws://127.0.0.1:4000/v1 --transit-helper tcp:127.0.0.1:4001"
# One unmeasured exchange: the server's first connection pays its own set-up.
# `wait` names the sender: a bare `wait` would wait for the server too.
$W send --code 7-warm-up --text hello >/dev/null 2>&1 & sender=$!
$W receive 7-warm-up >/dev/null 2>&1; wait $sender
for i in $(seq {runs}); do
  t0=$(date +%s%N)
  $W send --code "$i-purple-sausages" --text hello >/dev/null 2>&1 & sender=$!
  $W receive "$i-purple-sausages" >/dev/null 2>&1
  wait $sender
  t1=$(date +%s%N)
  echo "sample $(( (t1 - t0) / 1000 ))"
done
"#,
        work = work.display(),
        bin = bin.display(),
    );
    let out = Command::new("unshare")
        .args(["-n", "bash", "-c", &script])
        .output()
        .map_err(io("unshare -n"))?;
    let _ = std::fs::remove_dir_all(&work);
    let samples: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("sample "))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .map(|us| us / 1000.0)
        .collect();
    if !out.status.success() || samples.len() != runs {
        return Err(BenchError::Setup(format!(
            "wormhole run failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(samples)
}

fn write_benchmarks(section: &str) -> Result<PathBuf, BenchError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).map_err(io("reading BENCHMARKS.md"))?;
    let updated = match text.find(HEADING) {
        Some(start) => {
            let rest = &text[start + HEADING.len()..];
            let end = rest
                .find("\n## ")
                .map_or(text.len(), |i| start + HEADING.len() + i + 1);
            format!("{}{section}{}", &text[..start], &text[end..])
        }
        None => format!(
            "{}\n{section}",
            text.trim_end_matches('\n').to_owned() + "\n"
        ),
    };
    std::fs::write(&path, updated).map_err(io("writing BENCHMARKS.md"))?;
    Ok(path)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("paircode-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BenchError> {
    let options = parse_options()?;
    if let Some(reason) = lab::skip_reason() {
        return Err(BenchError::Setup(format!("cannot build hosts: {reason}")));
    }
    let bin = paircode_bin()?;
    let (runs, cold) = (options.runs, options.cold);
    let mut rows = Vec::new();
    let mut rss = None;
    let mut warm_p50 = None;
    let cases = [
        ("bridge", Impairment::default()),
        (
            "bridge, 100 ms RTT",
            Impairment {
                delay: Duration::from_millis(50),
                loss_percent: 0.0,
            },
        ),
        (
            "bridge, 5% loss",
            Impairment {
                delay: Duration::ZERO,
                loss_percent: 5.0,
            },
        ),
    ];
    for (i, (name, impairment)) in cases.into_iter().enumerate() {
        eprintln!("measuring: {name} …");
        match bridge(&bin, &i.to_string(), impairment, runs, cold) {
            Ok(Measured {
                warm,
                cold: cold_samples,
                rss_kib: idle_rss,
            }) => {
                if i == 0 {
                    rss = idle_rss;
                    warm_p50 = Some(summary(&warm).0);
                }
                let (warm_goal, cold_goal) = if i == 0 {
                    ("p50 < 150, p95 < 400", "< 2000")
                } else {
                    ("", "")
                };
                rows.push(Row::new(
                    &format!("{name}: join → both lists updated"),
                    Ok(warm),
                    warm_goal,
                ));
                rows.push(Row::new(
                    &format!("{name}: cold, both daemons start → paired"),
                    Ok(cold_samples),
                    cold_goal,
                ));
            }
            Err(e) => rows.push(Row::new(name, Err(e), "")),
        }
    }
    eprintln!("measuring: Magic Wormhole on loopback …");
    let wormhole = wormhole(runs);
    let wormhole_p50 = wormhole.as_ref().ok().map(|s| summary(s).0);
    rows.push(Row::new(
        "Magic Wormhole, loopback: send + receive a text with a known code",
        wormhole,
        "",
    ));

    let mut section = format!(
        "{HEADING}\n\nCommand (as root; release build):\n\n```sh\n\
         cargo build --release -p paircode-cli\n\
         cargo run --release -p paircode-bench -- --runs {runs} --cold {cold}\n```\n\n\
         Results of one run on the standard machine (netem {}):\n\n\
         | case | runs | p50 ms | p95 ms | max ms | goal (ms) |\n\
         | --- | ---: | ---: | ---: | ---: | --- |\n",
        if lab::netem_available() {
            "available: impaired links use `tc netem`"
        } else {
            "missing from this kernel: impaired links use the test bed's userspace TAP link"
        }
    );
    for row in &rows {
        section.push_str(&row.markdown());
        section.push('\n');
    }
    section.push('\n');
    match rss {
        Some(kib) => section.push_str(&format!(
            "- Idle daemon RSS (VmRSS after pairing and 3 s idle): {:.1} MiB (goal < 25 MiB).\n",
            kib as f64 / 1024.0
        )),
        None => section.push_str("- Idle daemon RSS: could not be read.\n"),
    }
    match (warm_p50, wormhole_p50) {
        (Some(p), Some(w)) => section.push_str(&format!(
            "- paircode / wormhole (p50): {:.3} — paircode is {:.1}x faster (goal ≥ 10x).\n",
            p / w,
            w / p
        )),
        (_, None) => section.push_str(
            "- paircode / wormhole: no ratio, Magic Wormhole could not be measured (see its row).\n",
        ),
        (None, _) => section.push_str("- paircode / wormhole: no ratio, paircode's bridge row failed.\n"),
    }
    section.push_str(
        "\n- **join → both lists updated**: two hosts (network namespaces) on one Linux \
         bridge, both daemons up with mDNS on; one unmeasured pairing first. Each run: \
         `pair generate --auto-accept` on alice (not timed), then from starting `paircode \
         network pair join` on bob until both the join command has exited with success and \
         alice's generate has reported the pairing stored. CLI process start-up included.\n\
         - **cold**: both daemons stopped; from starting both (`paircode start`, which \
         returns once the daemon is ready, at the same moment) until both have stored the \
         pairing; includes unlocking the store (Argon2id), node start, mDNS discovery.\n\
         - **100 ms RTT**: 50 ms added in each direction on bob's link; **5% loss**: each \
         frame on bob's link lost with 5% probability, in each direction.\n\
         - **Magic Wormhole**: Python `wormhole send --text` and `wormhole receive` started \
         together with the same code, against `twist wormhole-mailbox` bound to \
         127.0.0.1, all inside `unshare -n` (a namespace with only loopback); from starting \
         both until both have exited. Interpreter start-up included, as paircode's CLI \
         start-up is.\n",
    );
    println!("{section}");
    if options.write {
        let path = write_benchmarks(&section)?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}
