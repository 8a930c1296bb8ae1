//! Issue 13's benchmark: one large file (1 GiB by default) sent with `paircode send`
//! between two paired daemons, on loopback and across a namespace bridge, in the same run
//! as its floor — the same bytes over a bare libp2p stream (`p2p-floor`: TCP + Noise +
//! Yamux, no application logic) — and Magic Wormhole's Rust CLI (`wormhole-rs`) sending
//! the same file.
//!
//! ```sh
//! cargo build --release -p paircode-cli -p paircode-bench
//! cargo run --release -p paircode-bench --bin send-bench -- [--mib 1024] [--runs 3] [--write]
//! ```
//!
//! Needs root (network namespaces) and, for the wormhole rows, `wormhole-rs` (on PATH or in
//! ~/.cargo/bin) and the Python mailbox server (`twist wormhole-mailbox`) in a venv under
//! ~/.cache/paircode-bench. Each round runs every case once, the case that goes first
//! rotating. `--write` replaces the "Sending files" section of BENCHMARKS.md.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use paircode_bench::args::{ArgError, Args};
use paircode_bench::report::{self, Conditions};
use paircode_bench::{tools, wormhole};
use paircode_netbed::daemon::Daemons;
use paircode_netbed::lab::{self, Host, Lab};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const HEADING: &str = "## Sending files (issue 13)";

fn main() {
    if let Err(e) = run() {
        eprintln!("send-bench: {e}");
        std::process::exit(1);
    }
}

fn err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

struct Options {
    mib: u64,
    runs: usize,
    write: bool,
}

fn options() -> Result<Options, ArgError> {
    let mut args = Args::from_env();
    let mut o = Options {
        mib: 1024,
        runs: 3,
        write: args.write,
    };
    while let Some(flag) = args.next_flag()? {
        match flag.name.as_str() {
            "--mib" => o.mib = flag.positive()?,
            "--runs" => o.runs = flag.positive()?,
            _ => return Err(flag.unknown()),
        }
    }
    Ok(o)
}

/// `mib` MiB of pseudo-random bytes (nothing along the way can compress them).
fn payload(path: &Path, mib: u64) -> Result<(), String> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(err("payload"))?);
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        rng.fill_bytes(&mut block);
        file.write_all(&block).map_err(err("payload"))?;
    }
    file.flush().map_err(err("payload"))
}

/// A `/proc/PID/status` field in KiB.
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time a process spent (`self_`: its own, user + system) or its waited-for children
/// did (`!self_`), in seconds, from `/proc/PID/stat` (fields 14–17, in 100 Hz ticks).
fn cpu_secs(pid: &str, own: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let at = if own { 11 } else { 13 };
    match fields.get(at..at + 2) {
        Some([user, system]) => (user + system) as f64 / 100.0,
        _ => 0.0,
    }
}

/// Resets a process's peak RSS (VmHWM) to its current RSS, so the next peak is a
/// transfer's own (Linux: `clear_refs` value 5).
fn reset_peak(pid: u32) -> Result<(), String> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").map_err(err("clear_refs"))
}

/// Removes everything in a downloads directory (the received file, its partial).
fn empty(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = match p.is_dir() {
                true => std::fs::remove_dir_all(&p),
                false => std::fs::remove_file(&p),
            };
        }
    }
}

/// Two paired daemons (alice sends, bob receives) and the means to run things on their
/// hosts: on loopback (`hosts` is `None`) or on two namespace hosts on one bridge.
struct Pair {
    daemons: Daemons,
    hosts: Option<(Host, Host)>,
    bob_downloads: PathBuf,
}

/// One transfer's outcome.
struct Sample {
    secs: f64,
    /// Sender's and receiver's daemon peak RSS in KiB (paircode only).
    peaks: Option<(u64, u64)>,
}

impl Pair {
    fn start(daemons: Daemons, hosts: Option<(Host, Host)>) -> Result<Pair, String> {
        let d = |r: Result<(), paircode_netbed::daemon::DaemonError>| r.map_err(|e| e.to_string());
        let bob_downloads = daemons.data_dir().join("bob-downloads");
        let alice_downloads = daemons.data_dir().join("alice-downloads");
        d(daemons.init("alice"))?;
        d(daemons.init("bob"))?;
        let listen = |h: &Option<Host>| {
            h.as_ref()
                .map_or("/ip4/127.0.0.1/tcp/0".to_owned(), Host::listen_addr)
        };
        let (a_host, b_host) = match &hosts {
            Some((a, b)) => (Some(a.clone()), Some(b.clone())),
            None => (None, None),
        };
        let start = |host: &Option<Host>, name: &str, downloads: &Path, boot: Option<&str>| {
            let listen = listen(host);
            let downloads = downloads.display().to_string();
            let mut args = vec![
                "--listen",
                &listen,
                "--no-mdns",
                "--name",
                name,
                "--downloads",
                &downloads,
            ];
            if let Some(b) = boot {
                args.extend(["--bootstrap", b]);
            }
            d(daemons.start_with(host.as_ref(), name, &args))
        };
        start(&a_host, "alice", &alice_downloads, None)?;
        let boot = daemons.bootstrap_addr("alice").map_err(|e| e.to_string())?;
        start(&b_host, "bob", &bob_downloads, Some(&boot))?;
        daemons.pair("alice", "bob").map_err(|e| e.to_string())?;
        Ok(Pair {
            daemons,
            hosts,
            bob_downloads,
        })
    }

    /// `paircode send bob FILE` on alice, to its end; with both daemons' peak RSS.
    fn paircode(&self, file: &Path) -> Result<Sample, String> {
        let (alice, bob) = (
            self.daemons.pid("alice").map_err(|e| e.to_string())?,
            self.daemons.pid("bob").map_err(|e| e.to_string())?,
        );
        reset_peak(alice)?;
        reset_peak(bob)?;
        let cpu = || {
            (
                cpu_secs(&alice.to_string(), true),
                cpu_secs(&bob.to_string(), true),
                cpu_secs("self", false),
            )
        };
        let cpu_before = cpu();
        let started = Instant::now();
        let out = self
            .daemons
            .cmd("alice")
            .args(["send", "bob"])
            .arg(file)
            .stdout(Stdio::null())
            .output()
            .map_err(err("paircode send"))?;
        let secs = started.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!(
                "paircode send: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let peaks = (
            proc_kib(alice, "VmHWM:").unwrap_or(0),
            proc_kib(bob, "VmHWM:").unwrap_or(0),
        );
        let cpu_after = cpu();
        // Where the CPU went, which the load of a shared machine changes less than the time.
        eprintln!(
            "  {secs:.2} s; CPU s: sender daemon {:.2}, receiver daemon {:.2}, CLI {:.2}; \
             peak RSS MiB: sender {:.1}, receiver {:.1}",
            cpu_after.0 - cpu_before.0,
            cpu_after.1 - cpu_before.1,
            cpu_after.2 - cpu_before.2,
            peaks.0 as f64 / 1024.0,
            peaks.1 as f64 / 1024.0,
        );
        empty(&self.bob_downloads);
        Ok(Sample {
            secs,
            peaks: Some(peaks),
        })
    }

    fn on(&self, host: Option<&Host>, program: &Path) -> Command {
        match host {
            Some(h) => h.command(program),
            None => Command::new(program),
        }
    }

    /// The same file over `p2p-floor`: receiver on bob's side, sender on alice's.
    fn floor(&self, floor: &Path, file: &Path) -> Result<Sample, String> {
        let (a, b) = match &self.hosts {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        };
        let listen = b.map_or("/ip4/127.0.0.1/tcp/0".to_owned(), Host::listen_addr);
        let cpu_before = cpu_secs("self", false);
        let mut receiver = Reaped(
            self.on(b, floor)
                .args(["receive", &listen])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(err("p2p-floor receive"))?,
        );
        let mut addr = String::new();
        BufReader::new(receiver.0.stdout.take().expect("piped"))
            .read_line(&mut addr)
            .map_err(err("p2p-floor's address"))?;
        let started = Instant::now();
        let status = self
            .on(a, floor)
            .args(["send", addr.trim()])
            .arg(file)
            .status()
            .map_err(err("p2p-floor send"))?;
        let secs = started.elapsed().as_secs_f64();
        if !status.success() {
            return Err(format!("p2p-floor send: {status}"));
        }
        drop(receiver);
        eprintln!(
            "  {secs:.2} s; CPU s: both ends {:.2}",
            cpu_secs("self", false) - cpu_before
        );
        Ok(Sample { secs, peaks: None })
    }
}

/// A child that is killed and reaped however the caller leaves.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wormhole-rs` and the venv's `twist` (the mailbox server), if both are there.
fn wormhole_tools() -> Result<(PathBuf, PathBuf), String> {
    let rs = tools::wormhole_rs()?;
    let twist = ["venv-bench", "venv"]
        .iter()
        .map(|v| {
            tools::home()
                .join(".cache/paircode-bench")
                .join(v)
                .join("bin/twist")
        })
        .find(|t| t.exists())
        .ok_or(
            "no `twist` in ~/.cache/paircode-bench/venv-bench (pip install \
             magic-wormhole-mailbox-server there)",
        )?;
    Ok((rs, twist))
}

/// One `wormhole-rs send` → `wormhole-rs receive` of `file`, inside `unshare -n` (a
/// network namespace with only loopback and a veth pair carrying 10.79.0.1, which
/// `wormhole-rs` needs as its direct-connection hint: it offers no loopback address), with
/// its own mailbox server on 127.0.0.1; the time is from starting both until both exited.
/// The transfer is direct (`--force-direct`: no transit relay, the fastest path it has).
fn wormhole(
    rs: &Path,
    twist: &Path,
    file: &Path,
    work: &Path,
    round: usize,
) -> Result<Sample, String> {
    let out_dir = work.join(format!("wormhole-out{round}"));
    std::fs::create_dir_all(&out_dir).map_err(err("wormhole out dir"))?;
    let script = format!(
        r#"{prelude}M="--rendezvous-server ws://127.0.0.1:4000/v1 --force-direct"
t0=$(date +%s%N)
timeout 600 "{rs}" send $M --no-qr --code 7-purple-sausages "{file}" >/dev/null 2>&1 & sender=$!
timeout 600 "{rs}" receive $M --noconfirm --out-dir "{out}" 7-purple-sausages >/dev/null 2>&1
wait $sender
t1=$(date +%s%N)
echo "sample $(( (t1 - t0) / 1000 ))"
"#,
        prelude = wormhole::mailbox_prelude(twist, work),
        rs = rs.display(),
        file = file.display(),
        out = out_dir.display(),
    );
    let out = wormhole::run_unshared(&script).map_err(err("unshare -n"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = out?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let us = wormhole::samples_us(&stdout).first().copied();
    match (out.status.success(), us) {
        (true, Some(us)) => Ok(Sample {
            secs: us / 1e6,
            peaks: None,
        }),
        _ => Err(format!(
            "wormhole-rs exchange failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The cases, in table order.
const CASES: [&str; 5] = [
    "loopback: `paircode send`",
    "loopback: bare libp2p stream (floor)",
    "loopback: `wormhole-rs send` (direct)",
    "bridge: `paircode send`",
    "bridge: bare libp2p stream (floor)",
];

fn run() -> Result<(), String> {
    let o = options().map_err(|e| e.to_string())?;
    if let Some(reason) = lab::skip_reason() {
        return Err(format!("namespaces are needed: {reason}"));
    }
    let paircode = tools::sibling("paircode")?;
    let floor = tools::sibling("p2p-floor")?;
    let wormhole_tools = wormhole_tools();
    if let Err(e) = &wormhole_tools {
        eprintln!("no wormhole row: {e}");
    }
    let work = PathBuf::from(format!("/var/tmp/pcsend{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(err("work dir"))?;
    let file = work.join("payload.bin");
    eprintln!("writing {} MiB of payload …", o.mib);
    payload(&file, o.mib)?;

    let result = measure(&o, &paircode, &floor, &wormhole_tools, &file, &work);
    let _ = std::fs::remove_dir_all(&work);
    let section = result?;
    println!("{section}");
    if o.write {
        let path = report::write_section(HEADING, &section).map_err(|e| e.to_string())?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}

fn measure(
    o: &Options,
    paircode: &Path,
    floor: &Path,
    wormhole_tools: &Result<(PathBuf, PathBuf), String>,
    file: &Path,
    work: &Path,
) -> Result<String, String> {
    let loopback = Pair::start(Daemons::new(paircode).map_err(|e| e.to_string())?, None)?;
    let mut lab = Lab::new();
    let lan = lab.lan().map_err(|e| e.to_string())?;
    let alice = lab.host("alice", lan, false).map_err(|e| e.to_string())?;
    let bob = lab.host("bob", lan, false).map_err(|e| e.to_string())?;
    // Dropped before the lab: the daemons stop before their namespaces go.
    let bridge = Pair::start(
        Daemons::new(paircode).map_err(|e| e.to_string())?,
        Some((alice, bob)),
    )?;

    let conditions = Conditions::now();
    let mut samples: Vec<Vec<Sample>> = (0..CASES.len()).map(|_| Vec::new()).collect();
    for round in 0..o.runs {
        for i in 0..CASES.len() {
            let case = (round + i) % CASES.len();
            eprintln!("round {}: {}", round + 1, CASES[case]);
            let sample = match case {
                0 => loopback.paircode(file)?,
                1 => loopback.floor(floor, file)?,
                2 => match wormhole_tools {
                    Ok((rs, twist)) => wormhole(rs, twist, file, work, round)?,
                    Err(_) => continue,
                },
                3 => bridge.paircode(file)?,
                _ => bridge.floor(floor, file)?,
            };
            samples[case].push(sample);
        }
    }
    drop(bridge);
    drop(lab);
    Ok(table(o, &conditions, &samples, wormhole_tools))
}

fn table(
    o: &Options,
    conditions: &Conditions,
    samples: &[Vec<Sample>],
    wormhole_tools: &Result<(PathBuf, PathBuf), String>,
) -> String {
    let mib = o.mib as f64;
    let speed = |s: &[Sample]| -> Vec<f64> { s.iter().map(|x| mib / x.secs).collect() };
    let median_speed = |s: &[Sample]| match s.is_empty() {
        true => f64::NAN,
        false => report::median(&speed(s)),
    };
    let mut rows = String::new();
    for (case, s) in CASES.iter().zip(samples) {
        if s.is_empty() {
            continue;
        }
        let secs: Vec<f64> = s.iter().map(|x| x.secs).collect();
        let peaks =
            s.iter()
                .filter_map(|x| x.peaks)
                .fold(None, |acc: Option<(u64, u64)>, (a, b)| {
                    Some(acc.map_or((a, b), |(x, y)| (x.max(a), y.max(b))))
                });
        let (send_rss, recv_rss) = match peaks {
            Some((a, b)) => (
                format!("{:.1}", a as f64 / 1024.0),
                format!("{:.1}", b as f64 / 1024.0),
            ),
            None => ("".into(), "".into()),
        };
        rows.push_str(&format!(
            "| {case} | {} | {:.2} | {:.0} | {send_rss} | {recv_rss} |\n",
            s.len(),
            report::median(&secs),
            median_speed(s),
        ));
    }
    let of_floor =
        |p: usize, f: usize| 100.0 * median_speed(&samples[p]) / median_speed(&samples[f]);
    let max_recv = samples[0]
        .iter()
        .chain(&samples[3])
        .filter_map(|x| x.peaks.map(|p| p.1))
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    let wormhole = match (wormhole_tools, samples[2].is_empty()) {
        (Ok(_), false) => format!(
            "- Against `wormhole-rs` on loopback: paircode is **{:.1}×** as fast (goal: faster).\n",
            median_speed(&samples[0]) / median_speed(&samples[2])
        ),
        (Err(e), _) => format!("- No wormhole row: {e}.\n"),
        (Ok(_), true) => String::new(),
    };
    let runs = o.runs;
    let size = o.mib;
    format!(
        "{HEADING}\n\n\
         Command (as root; release build):\n\n\
         ```sh\n\
         nice cargo install magic-wormhole-cli --locked   # wormhole-rs, for its row\n\
         cargo build --release -p paircode-cli -p paircode-bench\n\
         cargo run --release -p paircode-bench --bin send-bench -- --mib {size} --runs {runs} --write\n\
         ```\n\n\
         {}\n\n\
         | case ({size} MiB file) | runs | p50 s | MiB/s (median) | sender daemon peak RSS MiB | receiver daemon peak RSS MiB |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n\
         {rows}\n\
         - Loopback: paircode reaches **{:.0} %** of the bare-transport floor; across the \
         bridge **{:.0} %** (goal ≥ 80 %).\n\
         {wormhole}\
         - Receiver daemon peak RSS: **{max_recv:.1} MiB** at most (goal < 64 MiB whatever the \
         file size).\n\n\
         - **paircode send**: alice's daemon sends to bob's, paired and connected \
         beforehand; the time is from starting `paircode send bob FILE` on alice until it \
         exits with success, which it does once bob's daemon has stored the file and \
         verified its SHA-256. It includes the CLI's start, alice reading and hashing the \
         file, bob writing it to disk (its downloads directory, on the same ext4 disk \
         as the source) and hashing it. Peak RSS is VmHWM from /proc, reset \
         (`clear_refs` 5) before each send; the column shows the largest over the runs. The \
         received file is deleted after each run.\n\
         - **floor**: `bench/src/bin/p2p-floor.rs`, both ends in their own processes where \
         the daemons run: libp2p 0.55 TCP (nodelay) + Noise + Yamux \
         (libp2p-yamux 0.47, default configuration, not paircode's bounded window) and one \
         `libp2p-stream` stream; the sender reads the same file in 256 KiB \
         chunks and writes them, the receiver reads into one 256 KiB buffer and discards, \
         then answers with the byte count. The time is from starting the sender (dial and \
         handshake included) until it has the count. Each end runs on one thread (a \
         current-thread tokio runtime), as the daemons do since session 6; until then both \
         ran on two worker threads, and the floor measured so (2026-11-30 14:03 UTC, the \
         daemons already on one thread) was slower than paircode itself: 568 MiB/s on \
         loopback and 499 MiB/s across the bridge, against paircode's 607 and 575.\n\
         - **wormhole-rs** ({}): sender and receiver started together with a known code \
         against a local `twist wormhole-mailbox` on 127.0.0.1, inside `unshare -n`, over a \
         direct TCP connection (`--force-direct`; no transit relay, which could only add a \
         hop); from starting both until both exited; the receiver writes the file to disk \
         as paircode's does.\n\
         - **bridge**: two network namespaces on one Linux bridge (veth, no impairment), \
         from `testing/netbed`'s `Lab`.\n\
         - Each round runs every case once, the case that goes first rotating.\n\n\
         Where paircode's time goes, beyond the floor: the sender reads the file on a thread of \
         its own, hashing each 256 KiB chunk as it reads it while the stream writes the one \
         before (three buffers in turn); the SHA-256 follows the bytes (`/paircode-send/2`), \
         so no byte waits for a hash, and a chunk goes out as one write (its length sits in \
         room left in front of the bytes). The receiver writes the file to disk, hashes it \
         (on a thread of its own, three 256 KiB buffers in turn) and syncs it (each full 8 MiB \
         window is handed to the disk as it fills, so the final fsync waits for the tail \
         only); before the first byte it reserves the file's blocks (`fallocate`, the \
         length unchanged), so that ext4 allocates once and not page by page as the bytes \
         come (`dd` of 1 GiB in 256 KiB writes: 0.14–0.15 s of system time with the blocks \
         reserved, 0.22 s without). On these 2 cores the two hashes, the disk write and the sync are CPU and disk \
         time the floor does not spend. The disk's speed varies with the virtual disk's \
         cache: `dd if=/dev/zero of=FILE bs=1M count=1024 conv=fdatasync` on the same disk \
         gave 389 MB/s, 1.6 GB/s and 2.2 GB/s in three runs in a row (2026-11-30 09:51 \
         UTC, load 1.2), so a disk shared with other work slows paircode and not the \
         floor.\n\n\
         Where the CPU goes (both daemons' CPU time, `/proc/PID/stat`, all threads, printed \
         per run): since session 8 paircode holds back yamux's flush after every frame \
         (`net/src/muxer.rs`). yamux flushes each 16 KiB data frame it writes, so Noise sent \
         each as a message of its own and TCP each as a write; flushed once yamux has \
         written all it has, the frames leave in full 64 KiB Noise messages. In eight \
         interleaved 1 GiB sends (2026-11-30 18:15–18:20 UTC, loopback and bridge) the two \
         daemons used 2.87–2.92 core-seconds in all with it and 3.02–3.34 without, and sent \
         at 621–652 MiB/s against 531–587. Since session 9 the receiving side also reads the \
         socket in 128 KiB pieces (`net/src/read_ahead.rs`): libp2p-noise asks for 8 KiB at \
         a time, so a 64 KiB Noise message took eight or nine `recv` calls (`strace -c` of \
         the receiving daemon, 256 MiB: 33,077 `recvfrom` calls before, 2,350 after). With \
         that and the reserved blocks, three interleaved 1 GiB sends on loopback took \
         1.33–1.46 s against 1.59 s (2026-11-30 20:04 UTC), the receiving daemon using \
         1.31–1.37 core-seconds against 1.46–1.52. Tried and not kept: writing the file \
         past the page cache (`O_DIRECT`): the receiving daemon used 0.1 core-seconds less, \
         but each write then waits for the disk, and the sends took longer (1.70–1.91 s \
         against 1.60–1.82, eight buffers in flight instead of three). The largest single cost is SHA-256: 0.57 \
         core-seconds per GiB on each side (sha2's SHA-NI code: 1.9 GiB/s in a plain loop \
         here, `openssl speed -evp sha256` 2.0 GB/s), more than Noise's ChaCha20-Poly1305 \
         (ring: 0.44 s per GiB sealing, 0.44 s opening). The floor's two processes use \
         2.0–2.6 core-seconds for their 1 GiB; the two hashes the end-to-end check needs are \
         most of the difference, and on 2 cores both are bound by the CPU (2.9 core-seconds \
         take at least 1.45 s; 2.6–2.9 since session 9). How fast the receiver copies into the page cache varies \
         with this virtual machine's memory: in runs at 18:25 UTC the receiving daemon used \
         2.6–3.8 core-seconds (1.4–1.6 s in the runs before), in both builds alike, with the \
         kernel's copy into the page cache (`copy_folio_from_iter_atomic`) at 16 % of all \
         samples of `perf record -a`; the floor discards what it receives.\n\n\
         The receiver's peak RSS follows how far its reading falls behind the network, up to \
         the stream's yamux receive window. yamux 0.13 doubles a stream's window whenever \
         the sender used half of it within two round trips and never shrinks it; \
         libp2p-yamux 0.47 leaves it bounded only by a 1 GiB connection limit it offers no \
         setting for, and a loaded receiver reached 75–80 MiB. paircode runs yamux 0.13 \
         itself (`net/src/muxer.rs`, the same `/yamux/1.0.0` on the wire) with a \
         connection's windows allowed to grow by 16 MiB in all beyond the 256 KiB each \
         stream starts with, so a transfer holds at most about 16 MiB in its window whatever \
         the file size and the load; the floor runs libp2p's own yamux, unbounded.\n",
        conditions.line(),
        of_floor(0, 1),
        of_floor(3, 4),
        version_of(wormhole_tools),
    )
}

fn version_of(tools: &Result<(PathBuf, PathBuf), String>) -> String {
    let Ok((rs, _)) = tools else {
        return "not installed".into();
    };
    Command::new(rs)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
