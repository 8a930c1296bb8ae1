//! Pairing across hosts, measured with the real `paircode` daemon and CLI on network
//! namespace hosts (the test bed's daemon harness, `paircode_netbed::daemon`), side by side
//! with Magic Wormhole — the Python CLI and the Rust one (`wormhole-rs`) — exchanging a
//! code against their own local mailbox server.
//!
//! ```sh
//! nice cargo build --release -p paircode-cli
//! sudo -E cargo run --release -p paircode-bench -- [--blocks 10] [--runs 5] [--cold 10] [--write]
//! ```
//!
//! The side-by-side figures are measured in interleaved blocks: each block runs `--runs`
//! paircode pairings, then `--runs` exchanges of each wormhole (the one going first
//! rotates), and a ratio is the median of the per-block ratios of medians, so each ratio
//! compares runs made under the same load. Prints the table, with the date and the load
//! average; `--write` also replaces the "Across hosts" section of BENCHMARKS.md.
//!
//! Needs root and iproute2 (namespaces), and the release `paircode` binary: `--paircode
//! PATH`, else `PAIRCODE_BIN`, else the `paircode` next to this program. The Python
//! wormhole is installed into a venv under ~/.cache/paircode-bench; `wormhole-rs` is looked
//! for on PATH and in ~/.cargo/bin (`cargo install magic-wormhole-cli --locked`). A tool
//! that is missing turns its row into a printed reason, not a number.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use paircode_bench::args::{ArgError, Args};
use paircode_bench::report::{self, ms, Conditions};
use paircode_bench::{tools, wormhole};
use paircode_netbed::daemon::{DaemonError, Site};
use paircode_netbed::lab::{self, Host, Impairment};

const HEADING: &str = "## Across hosts (issue 6)";

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Lab(#[from] lab::LabError),
    #[error(transparent)]
    Args(#[from] ArgError),
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

struct Options {
    blocks: usize,
    runs: usize,
    cold: usize,
    paircode: Option<PathBuf>,
    write: bool,
}

fn options() -> Result<Options, ArgError> {
    let mut args = Args::from_env();
    let mut o = Options {
        blocks: 10,
        runs: 5,
        cold: 10,
        paircode: None,
        write: args.write,
    };
    while let Some(flag) = args.next_flag()? {
        match flag.name.as_str() {
            "--blocks" => o.blocks = flag.positive()?,
            "--runs" => o.runs = flag.positive()?,
            "--cold" => o.cold = flag.positive()?,
            "--paircode" => o.paircode = Some(PathBuf::from(flag.value)),
            _ => return Err(flag.unknown()),
        }
    }
    Ok(o)
}

/// One table row: samples in milliseconds, or why there are none.
struct Row {
    case: String,
    figures: Result<(usize, (f64, f64, f64)), String>,
    goal: &'static str,
}

impl Row {
    fn new(case: impl Into<String>, samples: Result<Vec<f64>, String>, goal: &'static str) -> Row {
        Row {
            case: case.into(),
            figures: samples.map(|s| (s.len(), report::summary(&s))),
            goal,
        }
    }

    fn markdown(&self) -> String {
        match &self.figures {
            Ok((runs, (p50, p95, max))) => format!(
                "| {} | {runs} | {p50:.1} | {p95:.1} | {max:.1} | {} |",
                self.case, self.goal
            ),
            Err(reason) => format!("| {} | – | – | – | – | skipped: {reason} |", self.case),
        }
    }
}

/// The tools a side-by-side row needs, found once.
struct Wormholes {
    /// The venv's `bin` with `wormhole` and `twist` (the mailbox server both CLIs use).
    python: Result<PathBuf, String>,
    /// `wormhole-rs`.
    rust: Result<PathBuf, String>,
}

impl Wormholes {
    fn find() -> Wormholes {
        let python = install_python_wormhole().map_err(|e| e.to_string());
        let rust = tools::wormhole_rs().and_then(|bin| match &python {
            Ok(_) => Ok(bin),
            Err(_) => Err("its mailbox server comes from the Python venv, which failed".into()),
        });
        Wormholes { python, rust }
    }
}

/// What one block measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Paircode,
    PythonWormhole,
    RustWormhole,
}

/// The unimpaired bridge: warm pairings interleaved with both wormholes, then the idle RSS
/// and the cold pairings.
struct SideBySide {
    /// `[kind][block]` samples, or why a kind has none.
    blocks: Vec<Result<Vec<Vec<f64>>, String>>,
    kinds: Vec<Kind>,
    /// Per kind: exchanges that failed and were repeated (not in the samples).
    repeated: Vec<usize>,
    cold: Result<Vec<f64>, String>,
    rss_kib: Option<u64>,
}

fn side_by_side(bin: &Path, wormholes: &Wormholes, o: &Options) -> Result<SideBySide, BenchError> {
    let mut site = Site::new(bin)?;
    let (alice, bob) = site.alice_and_bob(false)?;
    // Not measured: connects the two daemons.
    site.pair(&alice, &bob)?;
    let mut kinds = vec![Kind::Paircode];
    let mut failed: Vec<Option<String>> = vec![None];
    for (kind, tool) in [
        (Kind::PythonWormhole, &wormholes.python),
        (Kind::RustWormhole, &wormholes.rust),
    ] {
        kinds.push(kind);
        failed.push(tool.as_ref().err().cloned());
    }
    let runs = o.runs;
    let mut repeated = vec![0; kinds.len()];
    let per_kind = report::interleave(o.blocks, kinds.len(), |i| {
        if failed[i].is_some() {
            return Ok::<_, BenchError>(Vec::new());
        }
        let samples = match kinds[i] {
            Kind::Paircode => (0..runs)
                .map(|_| site.pair(&alice, &bob).map(|t| ms(t.both_stored)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string()),
            Kind::PythonWormhole | Kind::RustWormhole => {
                let block = if kinds[i] == Kind::PythonWormhole {
                    python_wormhole(wormholes, runs)
                } else {
                    rust_wormhole(wormholes, runs)
                };
                block
                    .map(|b| {
                        repeated[i] += b.failed;
                        b.samples
                    })
                    .map_err(|e| e.to_string())
            }
        };
        Ok(samples.unwrap_or_else(|e| {
            failed[i] = Some(e);
            Vec::new()
        }))
    })?;
    let blocks = per_kind
        .into_iter()
        .zip(&failed)
        .map(|(b, f)| match f {
            Some(reason) => Err(reason.clone()),
            None => Ok(b),
        })
        .collect();
    // Idle: no session, nothing to do but stay reachable for a few seconds.
    std::thread::sleep(Duration::from_secs(3));
    let rss_kib = site
        .daemons
        .pid(&alice.name)
        .ok()
        .and_then(|pid| vm_rss_kib(pid.into()));
    let cold = cold_pairings(&site, &alice, &bob, o.cold).map_err(|e| e.to_string());
    Ok(SideBySide {
        blocks,
        kinds,
        repeated,
        cold,
        rss_kib,
    })
}

/// `runs` times: both daemons stopped, then started at the same moment (as two machines
/// switched on together), until both have stored a pairing.
fn cold_pairings(
    site: &Site,
    alice: &Host,
    bob: &Host,
    runs: usize,
) -> Result<Vec<f64>, BenchError> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        site.daemons.stop(&alice.name)?;
        site.daemons.stop(&bob.name)?;
        let started = std::time::Instant::now();
        let (a, b) = std::thread::scope(|s| {
            let b = s.spawn(|| site.start(bob, true, None));
            (
                site.start(alice, true, None),
                b.join().expect("start thread"),
            )
        });
        a?;
        b?;
        let paired = site.pair(alice, bob)?;
        samples.push(ms(paired.both_stored_at - started));
    }
    Ok(samples)
}

/// Warm and cold pairings on a bridge with `impairment` on bob's link.
fn impaired(
    bin: &Path,
    impairment: Impairment,
    runs: usize,
    cold: usize,
) -> Result<(Vec<f64>, Vec<f64>), BenchError> {
    let mut site = Site::new(bin)?;
    let (alice, bob) = site.alice_and_bob(true)?;
    site.lab.impair(&bob, impairment)?;
    site.pair(&alice, &bob)?;
    let warm = (0..runs)
        .map(|_| site.pair(&alice, &bob).map(|t| ms(t.both_stored)))
        .collect::<Result<Vec<_>, _>>()?;
    let cold = cold_pairings(&site, &alice, &bob, cold)?;
    Ok((warm, cold))
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

fn install_python_wormhole() -> Result<PathBuf, BenchError> {
    let venv = tools::home().join(".cache/paircode-bench/venv");
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

/// The start of every wormhole script: the mailbox server in a namespace of its own
/// ([`wormhole::mailbox_prelude`]), then `run_all RUNS`, which runs the exchanges.
fn wormhole_prelude(venv_bin: &Path, work: &Path) -> String {
    wormhole::mailbox_prelude(&venv_bin.join("twist"), work)
        + r#"# With the tool's `exchange CODE` defined (it returns non-zero when the exchange failed):
# one unmeasured exchange (the server's first connection pays its own set-up), then $1
# timed ones. A failed exchange prints `failed CODE` and is repeated with a new code, at
# most three times; only successful exchanges are samples.
run_all() {
  exchange 999-purple-sausages || exchange 998-purple-sausages || true
  for i in $(seq "$1"); do
    for try in 1 2 3; do
      code="$i$try-purple-sausages"
      t0=$(date +%s%N)
      if exchange "$code"; then
        t1=$(date +%s%N)
        echo "sample $(( (t1 - t0) / 1000 ))"
        break
      fi
      echo "failed $code"
    done
  done
}
"#
}

/// What one block of a wormhole's exchanges gave: samples in milliseconds, and how many
/// exchanges failed and were repeated.
struct WormholeBlock {
    samples: Vec<f64>,
    failed: usize,
}

/// Runs a wormhole script: the prelude, then `body`, which defines `exchange CODE` and
/// calls `run_all RUNS`. Each exchange runs under `timeout 60`.
fn run_wormhole_script(
    venv_bin: &Path,
    name: &str,
    body: &str,
    runs: usize,
) -> Result<WormholeBlock, BenchError> {
    let work = PathBuf::from(format!("/tmp/pcbw{}{name}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io("wormhole work dir"))?;
    let script = wormhole_prelude(venv_bin, &work) + body;
    let out = wormhole::run_unshared(&script).map_err(io("unshare -n"));
    let _ = std::fs::remove_dir_all(&work);
    let out = out?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let samples: Vec<f64> = wormhole::samples_us(&stdout)
        .into_iter()
        .map(|us| us / 1000.0)
        .collect();
    let failed = stdout.lines().filter(|l| l.starts_with("failed ")).count();
    if !out.status.success() || samples.len() != runs {
        return Err(BenchError::Setup(format!(
            "{name}: {} of {runs} exchanges succeeded ({} failed; script {}): {}",
            samples.len(),
            failed,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(WormholeBlock { samples, failed })
}

/// `runs` exchanges between Python `wormhole send --text` and `wormhole receive`, started
/// together with a known code.
fn python_wormhole(wormholes: &Wormholes, runs: usize) -> Result<WormholeBlock, BenchError> {
    let venv = wormholes
        .python
        .as_ref()
        .map_err(|e| BenchError::Setup(e.clone()))?;
    let body = format!(
        r#"W="{venv}/wormhole --relay-url ws://127.0.0.1:4000/v1 --transit-helper tcp:127.0.0.1:4001"
# `wait` names the sender: a bare `wait` would wait for the server too.
exchange() {{
  ok=0
  timeout 60 $W send --code "$1" --text hello >/dev/null 2>&1 & sender=$!
  timeout 60 $W receive "$1" >/dev/null 2>&1 || ok=1
  wait $sender || ok=1
  return $ok
}}
run_all {runs}
"#,
        venv = venv.display(),
    );
    run_wormhole_script(venv, "python", &body, runs)
}

/// `runs` exchanges between `wormhole-rs send` and `wormhole-rs receive` of a one-line file
/// (the Rust CLI sends files only), started together with a known code; the file goes over
/// a direct connection to 10.79.0.1.
fn rust_wormhole(wormholes: &Wormholes, runs: usize) -> Result<WormholeBlock, BenchError> {
    let venv = wormholes
        .python
        .as_ref()
        .map_err(|e| BenchError::Setup(e.clone()))?;
    let rs = wormholes
        .rust
        .as_ref()
        .map_err(|e| BenchError::Setup(e.clone()))?;
    let body = format!(
        r#"R="{rs}"
M="--rendezvous-server ws://127.0.0.1:4000/v1 --force-direct"
echo hello > hello.txt
exchange() {{
  ok=0
  timeout 60 $R send $M --no-qr --code "$1" hello.txt >/dev/null 2>&1 & sender=$!
  mkdir -p "out$1"
  timeout 60 $R receive $M --noconfirm --out-dir "out$1" "$1" >/dev/null 2>&1 || ok=1
  wait $sender || ok=1
  return $ok
}}
run_all {runs}
"#,
        rs = rs.display(),
    );
    run_wormhole_script(venv, "rust", &body, runs)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("paircode-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BenchError> {
    let o = options()?;
    if let Some(reason) = lab::skip_reason() {
        return Err(BenchError::Setup(format!("cannot build hosts: {reason}")));
    }
    let bin = tools::paircode_bin(o.paircode.clone()).map_err(BenchError::Setup)?;
    let conditions = Conditions::now();
    let warm_runs = o.blocks * o.runs;
    eprintln!("finding the wormhole tools …");
    let wormholes = Wormholes::find();
    for (name, tool) in [
        ("Python wormhole", &wormholes.python),
        ("wormhole-rs", &wormholes.rust),
    ] {
        if let Err(reason) = tool {
            eprintln!("skipping {name}: {reason}");
        }
    }

    eprintln!("measuring: bridge, interleaved with the wormholes …");
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    match side_by_side(&bin, &wormholes, &o) {
        Ok(s) => {
            let names = |kind| {
                match kind {
                Kind::Paircode => "bridge: join → both lists updated".to_owned(),
                Kind::PythonWormhole => "Magic Wormhole (Python), send + receive a text with a known code".to_owned(),
                Kind::RustWormhole => "Magic Wormhole (Rust `wormhole-rs`), send + receive a one-line file with a known code".to_owned(),
            }
            };
            let paircode = s.blocks[0].as_ref().ok();
            for ((kind, blocks), repeated) in s.kinds.iter().zip(&s.blocks).zip(&s.repeated) {
                let samples = blocks
                    .as_ref()
                    .map(|b| b.iter().flatten().copied().collect())
                    .map_err(Clone::clone);
                let goal = if *kind == Kind::Paircode {
                    "p50 < 150, p95 < 400"
                } else {
                    ""
                };
                rows.push(Row::new(names(*kind), samples, goal));
                if *kind == Kind::Paircode {
                    rows.push(Row::new(
                        "bridge: cold, both daemons start → paired",
                        s.cold.clone(),
                        "< 2000",
                    ));
                    continue;
                }
                let tool = if *kind == Kind::PythonWormhole {
                    "Python `wormhole`"
                } else {
                    "`wormhole-rs`"
                };
                match (paircode, blocks) {
                    (Some(p), Ok(w)) => {
                        let ratio = report::block_ratio(w, p);
                        let (lo, hi) = report::block_ratio_range(w, p);
                        notes.push(format!(
                            "- paircode against {tool}: **{ratio:.1}×** faster (median of {} \
                             per-block ratios of p50s; blocks {lo:.1}× – {hi:.1}×; goal ≥ 10×).",
                            p.len()
                        ));
                    }
                    (_, Err(_)) => notes.push(format!("- {tool}: no ratio (see its row).")),
                    (None, _) => {
                        notes.push(format!("- {tool}: no ratio, paircode's bridge row failed."))
                    }
                }
                if *repeated > 0 {
                    notes.push(format!(
                        "- {tool}: {repeated} exchange(s) failed and were repeated with a new \
                         code; failed attempts are not among the samples."
                    ));
                }
            }
            notes.insert(
                0,
                match s.rss_kib {
                    Some(kib) => format!(
                        "- Idle daemon RSS (VmRSS after pairing and 3 s idle): {:.1} MiB (goal < 25 MiB).",
                        kib as f64 / 1024.0
                    ),
                    None => "- Idle daemon RSS: could not be read.".into(),
                },
            );
        }
        Err(e) => rows.push(Row::new("bridge", Err(e.to_string()), "")),
    }

    for (name, impairment) in [
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
    ] {
        eprintln!("measuring: {name} …");
        match impaired(&bin, impairment, warm_runs, o.cold) {
            Ok((warm, cold)) => {
                rows.push(Row::new(
                    format!("{name}: join → both lists updated"),
                    Ok(warm),
                    "",
                ));
                rows.push(Row::new(
                    format!("{name}: cold, both daemons start → paired"),
                    Ok(cold),
                    "",
                ));
            }
            Err(e) => rows.push(Row::new(name, Err(e.to_string()), "")),
        }
    }

    let (blocks, runs, cold) = (o.blocks, o.runs, o.cold);
    let mut section = format!(
        "{HEADING}\n\nCommand (as root; release build):\n\n```sh\n\
         nice cargo install magic-wormhole-cli --locked   # wormhole-rs, for its row\n\
         cargo build --release -p paircode-cli\n\
         cargo run --release -p paircode-bench -- --blocks {blocks} --runs {runs} --cold {cold} --write\n```\n\n\
         {} Netem {}.\n\n\
         | case | runs | p50 ms | p95 ms | max ms | goal (ms) |\n\
         | --- | ---: | ---: | ---: | ---: | --- |\n",
        conditions.line(),
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
    for note in &notes {
        section.push_str(note);
        section.push('\n');
    }
    section.push_str(&format!(
        "\n- **join → both lists updated**: two hosts (network namespaces) on one Linux \
         bridge, both daemons up with mDNS on; one unmeasured pairing first. Each run: \
         `pair generate --auto-accept` on alice (not timed), then from starting `paircode \
         network pair join` on bob until both the join command has exited with success and \
         alice's generate has reported the pairing stored. CLI process start-up included.\n\
         - **side by side**: the unimpaired bridge row and the two Magic Wormhole rows are \
         measured in {blocks} interleaved blocks of {runs} runs each (paircode, Python \
         wormhole, Rust wormhole; the one going first rotates), with paircode's daemons up \
         throughout. A ratio is the median over blocks of (wormhole p50 / paircode p50) \
         within the block.\n\
         - **cold**: both daemons stopped; from starting both (`paircode start`, which \
         returns once the daemon is ready, at the same moment) until both have stored the \
         pairing; includes unlocking the store (Argon2id), node start, mDNS discovery.\n\
         - **100 ms RTT**: 50 ms added in each direction on bob's link; **5% loss**: each \
         frame on bob's link lost with 5% probability, in each direction. Measured one after \
         the other ({warm_runs} warm runs), not interleaved.\n\
         - **Magic Wormhole**: sender and receiver started together with the same code, \
         against `twist wormhole-mailbox` (Python) on 127.0.0.1, all inside `unshare -n` (a \
         network namespace with only loopback and a veth pair carrying 10.79.0.1, which \
         `wormhole-rs` needs as its direct-connection hint: it offers no loopback address), \
         from starting both until both have exited; each block starts its own mailbox server \
         and makes one unmeasured exchange first. Python: `wormhole send --text` (the text \
         goes through the mailbox). Rust: `wormhole-rs send` of a one-line file (it sends \
         files only), over a direct TCP connection (`--force-direct`). Interpreter and process start-up \
         included, as paircode's CLI start-up is. An exchange that fails is repeated with a \
         new code (at most three tries) and counted in a note above: `wormhole-rs` 0.8.1 \
         now and then panics in its transit code (\"socket must be IP: … NotConnected\"; \
         about 1 exchange in 40 when this bench was written).\n",
    ));
    println!("{section}");
    if o.write {
        let path = report::write_section(HEADING, &section).map_err(io("writing BENCHMARKS.md"))?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}
