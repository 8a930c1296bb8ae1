//! Pairing across two NATs (issue 12's benchmark), with the real `paircode` daemons, and
//! Magic Wormhole's Rust CLI in the same run and topology.
//!
//! ```sh
//! cargo build --release -p paircode-cli
//! sudo -E cargo run --release -p paircode-bench --bin across-nats -- [--runs 30] [--restarts 10] [--write]
//! ```
//!
//! `--wormhole off` leaves out the wormhole rows (while working on paircode's);
//! `--trace DIR` copies each run's two daemon logs to DIR, with the moment each join
//! started in `DIR/runs.txt`, and `--log debug` runs the daemons at debug level (where a
//! join's time goes).
//!
//! The topology (the test bed's NAT lab): an "internet" segment with a server host, two
//! homes behind port-preserving NATs (nftables masquerade), each home's uplink delayed by
//! 20 ms one way (the lab's userspace link), one device per home. On the server:
//! `paircode relay`, and for the wormhole rows its mailbox (`twist wormhole-mailbox`) and
//! transit relay (`twist transitrelay`), from the venv under ~/.cache/paircode-bench.
//!
//! Measured:
//! - **join → both paired**: alice (home a) runs `pair generate --auto-accept`; a fresh bob
//!   (home b, a new instance each run, its daemon started with `--relay` and holding its
//!   reservation, which is not timed) runs `pair join`: from starting the join until both
//!   have stored the pairing. Bob finds alice only through the meeting point (DHT), and
//!   reaches her through its relay first. The join starts `--typing-ms` (1 s) after the
//!   code is shown: a person takes longer than that to type 12 words, and meanwhile
//!   alice's daemon announces the code through the meeting point.
//! - **pairing → direct**: from both stored until bob's `network devices --json` says
//!   `"connection": "direct"` for alice (polled every 10 ms).
//! - **restart → online again**: alice and one paired bob stop, then start at the same
//!   moment: until each lists the other online (rendezvous through the meeting point).
//! - **wormhole-rs**: `send` of a one-line file in home a, `receive` in home b, started
//!   together with a known code, against the mailbox and transit relay on the server; until
//!   both exited. Interleaved with paircode's runs (one of each in turn).
//!
//! Not in CI: it is a benchmark. Needs root, iproute2, nftables.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paircode_bench::args::{ArgError, Args};
use paircode_bench::report::{self, ms, Conditions};
use paircode_bench::tools;
use paircode_netbed::daemon::{DaemonError, Site};
use paircode_netbed::lab::{self, Host, Impairment, Nat, TwoHomes};

const HEADING: &str = "## Across two NATs (issue 12)";
/// Where a join's time goes: traced once (`--trace DIR --log debug`), kept with the table.
const TIMELINE: &str = include_str!("across-nats-timeline.md");
const DELAY: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Lab(#[from] lab::LabError),
    #[error(transparent)]
    Args(#[from] ArgError),
    #[error("{0}")]
    Setup(String),
}

struct Options {
    runs: usize,
    /// From showing the code to starting the join.
    typing: Duration,
    restarts: usize,
    paircode: Option<PathBuf>,
    /// `--wormhole off` leaves out the wormhole rows (while iterating on paircode's).
    wormhole: bool,
    /// `--trace DIR`: each run's logs are copied to DIR (where the time of a join goes).
    trace: Option<PathBuf>,
    /// `--log debug`: the daemons log at debug level.
    debug_logs: bool,
    write: bool,
}

fn options() -> Result<Options, ArgError> {
    let mut args = Args::from_env();
    let mut o = Options {
        runs: 30,
        typing: Duration::from_secs(1),
        restarts: 10,
        paircode: None,
        wormhole: true,
        trace: None,
        debug_logs: false,
        write: args.write,
    };
    while let Some(flag) = args.next_flag()? {
        match flag.name.as_str() {
            "--runs" => o.runs = flag.positive()?,
            "--restarts" => o.restarts = flag.positive()?,
            "--typing-ms" => o.typing = Duration::from_millis(flag.positive()?),
            "--paircode" => o.paircode = Some(PathBuf::from(flag.value)),
            "--wormhole" => match flag.value.as_str() {
                "on" => o.wormhole = true,
                "off" => o.wormhole = false,
                _ => return Err(flag.unknown()),
            },
            "--trace" => o.trace = Some(PathBuf::from(flag.value)),
            "--log" => match flag.value.as_str() {
                "debug" => o.debug_logs = true,
                "info" => o.debug_logs = false,
                _ => return Err(flag.unknown()),
            },
            _ => return Err(flag.unknown()),
        }
    }
    Ok(o)
}

/// The venv's `bin` with `twist`, and the mailbox and transit relay plugins installed.
fn wormhole_servers() -> Result<PathBuf, String> {
    let bin = tools::home().join(".cache/paircode-bench/venv/bin");
    let python = bin.join("python");
    let has = |module: &str| {
        Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for (module, package) in [
        ("wormhole_mailbox_server", "magic-wormhole-mailbox-server"),
        ("wormhole_transit_relay", "magic-wormhole-transit-relay"),
    ] {
        if !has(module) {
            return Err(format!(
                "{package} missing: {}/pip install {package}",
                bin.display()
            ));
        }
    }
    Ok(bin)
}

fn wormhole_rs() -> Result<PathBuf, String> {
    let bin = tools::home().join(".cargo/bin/wormhole-rs");
    match bin.exists() {
        true => Ok(bin),
        false => Err("wormhole-rs not found (`cargo install magic-wormhole-cli --locked`)".into()),
    }
}

/// A process in a host's namespace, killed when dropped.
struct InNs(Child);

impl Drop for InNs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ns(host: &Host, program: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &host.ns]).arg(program).args(args);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// Starts a daemon on `host` with the meeting point, mDNS off (logging at debug level if
/// `verbose`), and waits for its reservation.
fn start_device(
    site: &Site,
    host: &Host,
    instance: &str,
    relay: &str,
    verbose: bool,
) -> Result<(), BenchError> {
    let listen = host.listen_addr();
    let mut args = vec![
        "--listen",
        &listen,
        "--name",
        instance,
        "--no-mdns",
        "--relay",
        relay,
    ];
    if verbose {
        args.push("--verbose");
    }
    site.daemons.start_with(Some(host), instance, &args)?;
    site.daemons.eventually("the reservation is active", || {
        let status = site.daemons.json(instance, &["status"])?;
        Ok(status["meeting_points"][0]["reservation"] == true)
    })?;
    Ok(())
}

/// Polls `owner`'s device list until `other` is reached directly.
fn direct(site: &Site, owner: &str, other_id: &str) -> Result<Instant, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let devices = site.daemons.devices(owner)?;
        let path = devices
            .iter()
            .find(|d| d["peer_id"] == other_id)
            .map(|d| d["connection"].clone());
        if path.is_some_and(|p| p == "direct") {
            return Ok(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(BenchError::Setup(format!(
        "{owner} never reached {other_id} directly"
    )))
}

/// One wormhole-rs exchange of a one-line file from alice's host to bob's.
fn wormhole_once(
    rs: &std::path::Path,
    alice: &Host,
    bob: &Host,
    server: &Host,
    code: &str,
    work: &std::path::Path,
) -> Result<Duration, String> {
    let rendezvous = format!("ws://{}:4000/v1", server.addr);
    let transit = format!("tcp://{}:4001", server.addr);
    let file = work.join("hello.txt");
    let out = work.join(format!("out-{code}"));
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let file = file.to_string_lossy().into_owned();
    let out = out.to_string_lossy().into_owned();
    let started = Instant::now();
    let mut sender = in_ns(
        alice,
        rs,
        &[
            "send",
            "--rendezvous-server",
            &rendezvous,
            "--relay-server",
            &transit,
            "--no-qr",
            "--code",
            code,
            &file,
        ],
    )
    .spawn()
    .map_err(|e| e.to_string())?;
    let received = in_ns(
        bob,
        rs,
        &[
            "receive",
            "--rendezvous-server",
            &rendezvous,
            "--relay-server",
            &transit,
            "--noconfirm",
            "--out-dir",
            &out,
            code,
        ],
    )
    .status()
    .map_err(|e| e.to_string())?;
    let sent = sender.wait().map_err(|e| e.to_string())?;
    let took = started.elapsed();
    match (sent.success(), received.success()) {
        (true, true) => Ok(took),
        _ => Err(format!("exchange {code}: send {sent}, receive {received}")),
    }
}

/// Copies the run's daemon logs to `dir` (alice's holds every run so far) with the
/// wall-clock moment the join started, to line them up.
fn trace_run(
    site: &Site,
    dir: &std::path::Path,
    run: usize,
    joiner: &str,
    times: &paircode_netbed::daemon::PairTimes,
) -> Result<(), BenchError> {
    let started = std::time::SystemTime::now() - times.both_stored_at.elapsed() - times.both_stored;
    let since_epoch = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let copy = |instance: &str, to: String| {
        let from = site.daemons.instance_dir(instance).join("daemon.log");
        std::fs::copy(&from, dir.join(to))
            .map_err(|e| BenchError::Setup(format!("copying {}: {e}", from.display())))
    };
    copy(joiner, format!("run{run}-bob.log"))?;
    copy("alice", format!("run{run}-alice.log"))?;
    let line = format!(
        "run {run}: join started at {}.{:06} (unix), both stored after {:.1} ms\n",
        since_epoch.as_secs(),
        since_epoch.subsec_micros(),
        ms(times.both_stored)
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("runs.txt"))
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| BenchError::Setup(e.to_string()))
}

struct Figures {
    join: Vec<f64>,
    direct: Vec<f64>,
    restart: Vec<f64>,
    wormhole: Result<Vec<f64>, String>,
    wormhole_failed: usize,
}

fn measure(o: &Options) -> Result<Figures, BenchError> {
    let bin = tools::paircode_bin(o.paircode.clone()).map_err(BenchError::Setup)?;
    let mut site = Site::new(&bin)?;
    let TwoHomes {
        server,
        home_a,
        home_b,
        alice,
        bob,
    } = site
        .lab
        .two_homes(Nat::PortPreserving, Nat::PortPreserving)?;
    for uplink in [&home_a.uplink, &home_b.uplink] {
        let impairment = Impairment {
            delay: DELAY,
            loss_percent: 0.0,
        };
        site.lab.impair(uplink, impairment)?;
    }
    let listen = server.listen_addr();
    let relay = site.daemons.relay_on(
        Some(&server),
        "mp",
        &["--listen", &listen, "--autonat-private-ips"],
    )?;

    // The wormhole servers on the internet host; a missing tool turns the row into a reason.
    let work = std::env::temp_dir().join(format!("pcb-nats-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| BenchError::Setup(e.to_string()))?;
    std::fs::write(work.join("hello.txt"), "hello\n")
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let tools = match o.wormhole {
        true => wormhole_servers().and_then(|venv| Ok((venv, wormhole_rs()?))),
        false => Err("left out (`--wormhole off`)".to_owned()),
    };
    let mut servers = Vec::new();
    let mut wormhole: Result<Vec<f64>, String> = match &tools {
        Ok((venv, _)) => {
            let twist = venv.join("twist");
            let mailbox = in_ns(
                &server,
                &twist,
                &[
                    "wormhole-mailbox",
                    "--port",
                    &format!("tcp:4000:interface={}", server.addr),
                ],
            )
            // The servers keep their databases in the working directory.
            .current_dir(&work)
            .spawn();
            let transit = in_ns(
                &server,
                &twist,
                &[
                    "transitrelay",
                    "--port",
                    &format!("tcp:4001:interface={}", server.addr),
                ],
            )
            .current_dir(&work)
            .spawn();
            match (mailbox, transit) {
                (Ok(m), Ok(t)) => {
                    servers.push(InNs(m));
                    servers.push(InNs(t));
                    // The Python servers take a moment to listen.
                    std::thread::sleep(Duration::from_secs(3));
                    Ok(Vec::new())
                }
                (m, t) => Err(format!(
                    "cannot start the wormhole servers: {:?} {:?}",
                    m.err(),
                    t.err()
                )),
            }
        }
        Err(reason) => Err(reason.clone()),
    };
    let mut wormhole_failed = 0;

    site.daemons.init("alice")?;
    let verbose = o.debug_logs;
    if let Some(dir) = &o.trace {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::Setup(e.to_string()))?;
    }
    start_device(&site, &alice, "alice", &relay.addr, verbose)?;
    let alice_id = site.daemons.peer_id("alice")?;

    let (mut join, mut to_direct) = (Vec::new(), Vec::new());
    // One unmeasured round first (caches, the servers' first connections).
    for run in 0..=o.runs {
        let joiner = format!("bob{run}");
        site.daemons.init(&joiner)?;
        start_device(&site, &bob, &joiner, &relay.addr, verbose)?;
        let times = site.daemons.pair_after("alice", &joiner, o.typing)?;
        let direct_at = direct(&site, &joiner, &alice_id);
        if let Some(dir) = &o.trace {
            trace_run(&site, dir, run, &joiner, &times)?;
        }
        let direct_at = direct_at?;
        site.daemons.stop(&joiner)?;
        if let (Ok(samples), Ok((_, rs))) = (&mut wormhole, &tools) {
            let code = format!("{}-purple-sausages", 100 + run);
            match wormhole_once(rs, &alice, &bob, &server, &code, &work) {
                Ok(took) if run > 0 => samples.push(ms(took)),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("wormhole-rs: {e}");
                    wormhole_failed += 1;
                    if wormhole_failed > o.runs / 3 {
                        wormhole = Err(format!("too many failed exchanges, last: {e}"));
                    }
                }
            }
        }
        if run > 0 {
            join.push(ms(times.both_stored));
            to_direct.push(ms(direct_at - times.both_stored_at));
            eprintln!(
                "run {run}: join → paired {:.0} ms, → direct {:.0} ms",
                join[run - 1],
                to_direct[run - 1]
            );
        }
    }

    // Restarts: alice and the last bob (paired) stop and start together.
    let last = format!("bob{}", o.runs);
    let bob_id = site.daemons.peer_id(&last).or_else(|_| {
        start_device(&site, &bob, &last, &relay.addr, verbose)?;
        site.daemons.peer_id(&last).map_err(BenchError::from)
    })?;
    let mut restart = Vec::new();
    for _ in 0..o.restarts {
        for instance in ["alice", last.as_str()] {
            let _ = site.daemons.stop(instance);
        }
        let started = Instant::now();
        let (a, b) = std::thread::scope(|s| {
            let b = s.spawn(|| start_device(&site, &bob, &last, &relay.addr, verbose));
            (
                start_device(&site, &alice, "alice", &relay.addr, verbose),
                b.join(),
            )
        });
        a?;
        b.map_err(|_| BenchError::Setup("start thread panicked".into()))??;
        let deadline = started + Duration::from_secs(30);
        loop {
            let both =
                site.daemons.online("alice", &last)? && site.daemons.online(&last, "alice")?;
            if both {
                restart.push(ms(started.elapsed()));
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "alice and {bob_id} not online again within 30 s of restarting"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&work);
    Ok(Figures {
        join,
        direct: to_direct,
        restart,
        wormhole,
        wormhole_failed,
    })
}

fn row(case: &str, samples: &Result<Vec<f64>, String>, goal: &str) -> String {
    match samples {
        Ok(s) if !s.is_empty() => {
            let (p50, p95, max) = report::summary(s);
            format!(
                "| {case} | {} | {p50:.0} | {p95:.0} | {max:.0} | {goal} |",
                s.len()
            )
        }
        Ok(_) => format!("| {case} | – | – | – | – | no samples |"),
        Err(reason) => format!("| {case} | – | – | – | – | skipped: {reason} |"),
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("across-nats: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BenchError> {
    let o = options()?;
    if let Some(reason) = lab::nat_skip_reason() {
        return Err(BenchError::Setup(format!(
            "cannot build the NAT lab: {reason}"
        )));
    }
    let conditions = Conditions::now();
    let f = measure(&o)?;
    let (runs, restarts, typing) = (o.runs, o.restarts, o.typing.as_millis());
    let mut section = format!(
        "{HEADING}\n\nCommand (as root; release build):\n\n```sh\n\
         nice cargo install magic-wormhole-cli --locked   # wormhole-rs, for its row\n\
         ~/.cache/paircode-bench/venv/bin/pip install magic-wormhole-mailbox-server magic-wormhole-transit-relay\n\
         cargo build --release -p paircode-cli\n\
         cargo run --release -p paircode-bench --bin across-nats -- --runs {runs} --restarts {restarts} --typing-ms {typing} --write\n```\n\n\
         {}\n\n\
         | case | runs | p50 ms | p95 ms | max ms | goal (ms) |\n\
         | --- | ---: | ---: | ---: | ---: | --- |\n",
        conditions.line(),
    );
    for line in [
        row(
            "join → both paired, across two NATs",
            &Ok(f.join.clone()),
            "p50 < 500",
        ),
        row(
            "pairing → direct connection",
            &Ok(f.direct.clone()),
            "< 2000",
        ),
        row(
            "both restart → online again",
            &Ok(f.restart.clone()),
            "< 10000",
        ),
        row(
            "Magic Wormhole (`wormhole-rs`), send + receive a one-line file",
            &f.wormhole,
            "",
        ),
    ] {
        section.push_str(&line);
        section.push('\n');
    }
    section.push('\n');
    if let Ok(w) = &f.wormhole {
        if !w.is_empty() && !f.join.is_empty() {
            let ratio = report::median(w) / report::median(&f.join);
            section.push_str(&format!(
                "- paircode's join → both paired against `wormhole-rs`'s exchange: **{ratio:.1}×** \
                 faster (ratio of p50s; runs interleaved, one of each in turn; goal: faster).\n"
            ));
        }
    }
    if f.wormhole_failed > 0 {
        section.push_str(&format!(
            "- `wormhole-rs`: {} exchange(s) failed; they are not among the samples.\n",
            f.wormhole_failed
        ));
    }
    section.push_str(&format!(
        "\n- **Topology**: the NAT lab (`paircode_netbed::lab`): an internet segment with a \
         server, two homes behind port-preserving nftables NATs, 20 ms one way on each \
         home's uplink (the lab's userspace link; this kernel has no netem), so 80 ms RTT \
         between the homes and 40 ms between a home and the server. `paircode relay` on \
         the server; both devices `paircode start --relay … --no-mdns`.\n\
         - **join → both paired**: each run a new bob (new instance and identity, daemon up, \
         relay reservation held; not timed), so nothing connects the two devices before \
         the join: bob finds alice's provider record through the meeting point and reaches \
         her through its relay. The join starts {typing} ms after alice's code is shown (a \
         person takes longer to type 12 words; meanwhile the code is announced). From \
         starting `pair join` on bob until the join exited and \
         alice's `pair generate --auto-accept` reported the pairing stored. CLI start-up \
         included. One unmeasured run first.\n\
         - **pairing → direct**: from both stored until bob's `network devices --json` shows \
         alice with `\"connection\": \"direct\"` (DCUtR's hole punch; the relayed connection \
         is then closed).\n\
         - **both restart**: alice and the last bob stop, then `paircode start` on both at \
         the same moment, until each lists the other online (store unlock, relay \
         reservation, rendezvous lookup through the meeting point, connection).\n\
         - **wormhole-rs**: `wormhole-rs send` in home a and `wormhole-rs receive \
         --noconfirm` in home b, started together with a known code, against `twist \
         wormhole-mailbox` and `twist transitrelay` on the server (the same host as \
         `paircode relay`), until both exited; the file goes through whichever transit \
         connection wins (the homes' direct hints are unreachable across the NATs). \
         Process start-up included, as for paircode's CLI.\n",
    ));
    section.push_str(TIMELINE);
    println!("{section}");
    if o.write {
        let path = report::write_section(HEADING, &section)
            .map_err(|e| BenchError::Setup(format!("writing BENCHMARKS.md: {e}")))?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}
