//! Real `paircode` daemons driven through the real CLI: the one harness for the CLI's
//! tests and for the daemon benchmark.
//!
//! [`Daemons`] owns a data directory of instances (one per name), starts and stops their
//! daemons, runs CLI commands against them and reads their JSON output. A daemon starts
//! either on loopback (mDNS off, as every loopback test must) or on a host of a namespace
//! lab ([`Daemons::start_on`]); [`Site`] is a lab and its daemons together.
//!
//! The binary under test is a parameter: cargo tests pass `env!("CARGO_BIN_EXE_paircode")`,
//! the benchmark the `paircode` next to its own executable.
//!
//! Everything that knows the shape of the CLI's `--json` output is in the last section of
//! this file ([`parse_json`] and the accessors after it), so a change of format is one
//! edit.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{Host, Lab, LabError};

/// The store password every instance of a harness uses (given in the environment).
pub const PASSWORD: &str = "correct horse battery";

/// The schema every `--json` line of the CLI names.
pub const SCHEMA: &str = "paircode/1";

/// How long [`Daemons::eventually`] and [`Daemons::pair`] wait before giving up.
const PATIENCE: Duration = Duration::from_secs(20);

/// How long [`Daemons::pair`] waits for the initiator to report after the join exited.
const REPORT_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` could not be run: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}):\n{stdout}\n{stderr}")]
    Failed {
        command: String,
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    #[error("`{command}` printed {line:?}, not the JSON expected: {source}")]
    NotJson {
        command: String,
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{command}`: {problem}")]
    Unexpected { command: String, problem: String },
    #[error("timed out waiting until {0}")]
    Timeout(String),
    #[error(transparent)]
    Lab(#[from] LabError),
}

/// `paircode --instance NAME ARGS…` as it appears in error messages.
/// A command that prints one envelope must not print events before it.
fn no_events(instance: &str, args: &[&str], events: &[Value]) -> Result<(), DaemonError> {
    match events {
        [] => Ok(()),
        _ => Err(DaemonError::Unexpected {
            command: describe(instance, args),
            problem: format!("printed events before its envelope: {events:?}"),
        }),
    }
}

fn describe(instance: &str, args: &[&str]) -> String {
    format!("paircode --instance {instance} {}", args.join(" "))
}

/// Instances of the real `paircode` binary in one data directory, which disappears (after
/// every daemon started through the harness was stopped) when this drops.
#[derive(Debug)]
pub struct Daemons {
    bin: PathBuf,
    dir: PathBuf,
    /// Instances whose daemon runs; `Mutex` so two daemons can start at once from two
    /// threads.
    started: Mutex<Vec<String>>,
}

impl Daemons {
    /// A new, empty data directory for instances of `bin`.
    pub fn new(bin: impl Into<PathBuf>) -> Result<Daemons, DaemonError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // Short, so the daemon's socket path stays within the 107 bytes Unix sockets allow.
        let dir = PathBuf::from(format!(
            "/tmp/pc{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| DaemonError::DataDir {
            path: dir.clone(),
            source,
        })?;
        Ok(Daemons {
            bin: bin.into(),
            dir,
            started: Mutex::new(Vec::new()),
        })
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn instance_dir(&self, instance: &str) -> PathBuf {
        self.dir.join(instance)
    }

    /// `paircode --instance NAME`, with the harness's data dir and password in the
    /// environment, run here. CLI commands reach their daemon over its Unix socket, so only
    /// `start` needs to run on a lab host ([`Daemons::cmd_on`]).
    pub fn cmd(&self, instance: &str) -> Command {
        self.cmd_on(None, instance)
    }

    /// Like [`Daemons::cmd`], run on `host` (in its network namespace) if given.
    pub fn cmd_on(&self, host: Option<&Host>, instance: &str) -> Command {
        let mut cmd = match host {
            Some(host) => host.command(&self.bin),
            None => Command::new(&self.bin),
        };
        cmd.arg("--instance")
            .arg(instance)
            .env("PAIRCODE_DATA_DIR", &self.dir)
            .env("PAIRCODE_PASSWORD", PASSWORD)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command to its end, whatever its exit status.
    pub fn run(&self, instance: &str, args: &[&str]) -> Result<Output, DaemonError> {
        self.cmd(instance)
            .args(args)
            .output()
            .map_err(|source| DaemonError::Spawn {
                command: describe(instance, args),
                source,
            })
    }

    /// Runs a command that must succeed; its standard output.
    pub fn ok(&self, instance: &str, args: &[&str]) -> Result<String, DaemonError> {
        succeeded(describe(instance, args), self.run(instance, args)?)
    }

    /// Runs `paircode --json ARGS`, which must succeed and print one result envelope: its
    /// `result`.
    pub fn json(&self, instance: &str, args: &[&str]) -> Result<Value, DaemonError> {
        let (events, result) = self.json_stream(instance, args)?;
        no_events(instance, args, &events)?;
        Ok(result)
    }

    /// Runs `paircode --json ARGS`, which must fail and print one error envelope whose
    /// `exit` is the process's exit code: the `error` and that code.
    pub fn json_error(
        &self,
        instance: &str,
        args: &[&str],
    ) -> Result<(Value, Option<i32>), DaemonError> {
        let (events, error, code) = self.json_stream_error(instance, args)?;
        no_events(instance, args, &events)?;
        Ok((error, code))
    }

    /// Runs `paircode --json ARGS` of a command that streams events before its envelope
    /// (`send`), which must succeed: the events and the final envelope's `result`. Every
    /// line must be JSON.
    pub fn json_stream(
        &self,
        instance: &str,
        args: &[&str],
    ) -> Result<(Vec<Value>, Value), DaemonError> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let command = describe(instance, &all);
        let stdout = self.ok(instance, &all)?;
        let mut events = json_lines(&command, &stdout)?;
        let envelope = events.pop().ok_or_else(|| DaemonError::Unexpected {
            command: command.clone(),
            problem: "printed nothing".to_owned(),
        })?;
        match result_of(&envelope) {
            Some(result) => Ok((events, result.clone())),
            None => Err(DaemonError::Unexpected {
                command,
                problem: format!("its last line is not a result envelope: {envelope}"),
            }),
        }
    }

    /// Runs `paircode --json ARGS` of a command that streams events before its envelope,
    /// which must fail and end with an error envelope whose `exit` is the process's exit
    /// code: the events, the `error` and that code. Every line must be JSON.
    pub fn json_stream_error(
        &self,
        instance: &str,
        args: &[&str],
    ) -> Result<(Vec<Value>, Value, Option<i32>), DaemonError> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let command = describe(instance, &all);
        let out = self.run(instance, &all)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut events = json_lines(&command, &stdout)?;
        let code = out.status.code();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let envelope = events.pop().ok_or_else(|| DaemonError::Unexpected {
            command: command.clone(),
            problem: format!("printed nothing (stderr: {stderr})"),
        })?;
        match error_of(&envelope) {
            Some(error) if exit_of(error) == code => Ok((events, error.clone(), code)),
            _ => Err(DaemonError::Unexpected {
                command,
                problem: format!(
                    "exited with {code:?}, not with its error envelope: {envelope} \
                     (stderr: {stderr})"
                ),
            }),
        }
    }

    pub fn init(&self, instance: &str) -> Result<(), DaemonError> {
        self.ok(instance, &["network", "init"]).map(drop)
    }

    /// Starts a daemon on loopback with mDNS off, optionally bootstrapped from another.
    pub fn start(&self, instance: &str, bootstrap_from: Option<&str>) -> Result<(), DaemonError> {
        let mut args = loopback_args(instance).to_vec();
        let addr;
        if let Some(other) = bootstrap_from {
            addr = self.addr(other)?;
            args.extend(["--bootstrap", &addr]);
        }
        self.start_with(None, instance, &args)
    }

    /// Starts a daemon on loopback with mDNS off whose descriptor limit (soft and hard) is
    /// `fds`, so that a flood of a bounded size exhausts it if the daemon does not guard
    /// against that.
    pub fn start_with_fd_limit(&self, instance: &str, fds: u64) -> Result<(), DaemonError> {
        let mut cmd = self.cmd(instance);
        // SAFETY: setrlimit is async-signal-safe; it only lowers this child's limit.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: fds,
                    rlim_max: fds,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.launch(cmd, instance, &loopback_args(instance))
    }

    /// Starts the daemon of instance `host.name` on `host`, listening on the host's address
    /// only, creating the instance first if it does not exist yet.
    pub fn start_on(
        &self,
        host: &Host,
        mdns: bool,
        bootstrap: Option<&str>,
    ) -> Result<(), DaemonError> {
        if !self.instance_dir(&host.name).join("identity").exists() {
            self.init(&host.name)?;
        }
        let listen = host.listen_addr();
        let mut args = vec!["--listen", &listen, "--name", &host.name];
        if !mdns {
            args.push("--no-mdns");
        }
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap", b]);
        }
        self.start_with(Some(host), &host.name, &args)
    }

    /// `paircode start ARGS` (on `host` if given), which returns once the daemon is ready;
    /// the daemon is stopped when the harness drops.
    pub fn start_with(
        &self,
        host: Option<&Host>,
        instance: &str,
        args: &[&str],
    ) -> Result<(), DaemonError> {
        self.launch(self.cmd_on(host, instance), instance, args)
    }

    /// Runs `cmd start ARGS`, which returns once the daemon is ready, and remembers the
    /// daemon to stop it when the harness drops.
    fn launch(&self, mut cmd: Command, instance: &str, args: &[&str]) -> Result<(), DaemonError> {
        let mut all = vec!["start"];
        all.extend_from_slice(args);
        let command = describe(instance, &all);
        let out = cmd
            .args(&all)
            .output()
            .map_err(|source| DaemonError::Spawn {
                command: command.clone(),
                source,
            })?;
        succeeded(command, out)?;
        self.started.lock().unwrap().push(instance.to_owned());
        Ok(())
    }

    /// `paircode relay ARGS` of instance `instance` (on `host` if given) in the
    /// background: a meeting point, with the address it printed first. It stops when the
    /// returned value drops.
    pub fn relay_on(
        &self,
        host: Option<&Host>,
        instance: &str,
        args: &[&str],
    ) -> Result<MeetingPoint, DaemonError> {
        let mut all = vec!["relay"];
        all.extend_from_slice(args);
        let command = describe(instance, &all);
        let mut child = self
            .cmd_on(host, instance)
            .args(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| DaemonError::Spawn {
                command: command.clone(),
                source,
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // Owned from here, so it is stopped on every way out.
        let mut meeting_point = MeetingPoint {
            child,
            addr: String::new(),
        };
        let mut addr = String::new();
        let read = BufReader::new(stdout).read_line(&mut addr);
        match read {
            Ok(n) if n > 0 => {}
            Ok(_) => {
                return Err(DaemonError::Unexpected {
                    command,
                    problem: "it ended before printing its address".to_owned(),
                })
            }
            Err(source) => return Err(DaemonError::Spawn { command, source }),
        }
        meeting_point.addr = addr.trim().to_owned();
        Ok(meeting_point)
    }

    pub fn stop(&self, instance: &str) -> Result<(), DaemonError> {
        self.ok(instance, &["stop"])?;
        self.forget(instance);
        Ok(())
    }

    /// Forgets a daemon that is known to be gone (killed by the caller), or that the caller
    /// stops itself.
    pub fn forget(&self, instance: &str) {
        self.started.lock().unwrap().retain(|i| i != instance);
    }

    /// The daemon's process id, from its pid file.
    pub fn pid(&self, instance: &str) -> Result<u32, DaemonError> {
        let path = self.instance_dir(instance).join("daemon.pid");
        let unexpected = |problem: String| DaemonError::Unexpected {
            command: format!("reading {}", path.display()),
            problem,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| unexpected(e.to_string()))?;
        text.trim()
            .parse()
            .map_err(|_| unexpected(format!("not a pid: {text:?}")))
    }

    /// The daemon's first listen address.
    pub fn addr(&self, instance: &str) -> Result<String, DaemonError> {
        let status = self.json(instance, &["status"])?;
        field_str(&status, "listen", 0, || {
            describe(instance, &["--json", "status"])
        })
    }

    pub fn peer_id(&self, instance: &str) -> Result<String, DaemonError> {
        let status = self.json(instance, &["status"])?;
        status["peer_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| DaemonError::Unexpected {
                command: describe(instance, &["--json", "status"]),
                problem: format!("no peer id in {status}"),
            })
    }

    /// The daemon's listen address with its peer id: a bootstrap address for others.
    pub fn bootstrap_addr(&self, instance: &str) -> Result<String, DaemonError> {
        let addr = self.addr(instance)?;
        if addr.contains("/p2p/") {
            return Ok(addr);
        }
        Ok(format!("{addr}/p2p/{}", self.peer_id(instance)?))
    }

    /// The instance's list of paired devices.
    pub fn devices(&self, instance: &str) -> Result<Vec<Value>, DaemonError> {
        let args = ["network", "devices"];
        match self.json(instance, &args)? {
            Value::Array(list) => Ok(list),
            other => Err(DaemonError::Unexpected {
                command: describe(instance, &args),
                problem: format!("not a list: {other}"),
            }),
        }
    }

    /// `owner`'s list holds `other` under its real peer id and name.
    pub fn lists(&self, owner: &str, other: &str) -> Result<bool, DaemonError> {
        let peer = self.peer_id(other)?;
        Ok(self
            .devices(owner)?
            .iter()
            .any(|d| d["peer_id"] == peer.as_str() && d["name"] == other))
    }

    /// `owner`'s list shows `other` online.
    pub fn online(&self, owner: &str, other: &str) -> Result<bool, DaemonError> {
        let peer = self.peer_id(other)?;
        Ok(self
            .devices(owner)?
            .iter()
            .any(|d| d["peer_id"] == peer.as_str() && d["online"] == true))
    }

    /// No temp file of an interrupted write is left in the instance directory. The file
    /// a daemon keeps reserved for its next pairing's save (`.devices.tmp-PID-early`,
    /// zeros until a save is written into it) is not one.
    pub fn no_leftovers(&self, instance: &str) -> Result<bool, DaemonError> {
        let dir = self.instance_dir(instance);
        let entries = std::fs::read_dir(&dir).map_err(|e| DaemonError::Unexpected {
            command: format!("listing {}", dir.display()),
            problem: e.to_string(),
        })?;
        Ok(entries.filter_map(Result::ok).all(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let reserved = name.ends_with("-early")
                && std::fs::read(e.path()).is_ok_and(|bytes| bytes.iter().all(|&b| b == 0));
            !name.contains(".tmp-") || reserved
        }))
    }

    /// Polls until `check` holds (daemons update presence asynchronously).
    pub fn eventually(
        &self,
        what: &str,
        mut check: impl FnMut() -> Result<bool, DaemonError>,
    ) -> Result<(), DaemonError> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if check()? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(DaemonError::Timeout(what.to_owned()))
    }

    /// Starts `paircode --json ARGS` in the background (stdin piped for answers).
    pub fn spawn(&self, instance: &str, args: &[&str]) -> Result<Running, DaemonError> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        Running::spawn(
            describe(instance, &all),
            self.cmd(instance).args(&all).stdin(Stdio::piped()),
        )
    }

    /// Starts `pair generate EXTRA` on `instance`: the running command and the code it
    /// printed.
    pub fn generate(
        &self,
        instance: &str,
        extra: &[&str],
    ) -> Result<(Running, String), DaemonError> {
        let mut args = vec!["network", "pair", "generate"];
        args.extend_from_slice(extra);
        let mut generating = self.spawn(instance, &args)?;
        // The first line is the code event.
        let first = generating.next_line()?;
        let words = words_of(&first)
            .ok_or_else(|| DaemonError::Unexpected {
                command: generating.command.clone(),
                problem: format!("no code in {first}"),
            })?
            .to_owned();
        Ok((generating, words))
    }

    /// Starts `pair join --yes --code WORDS` on `instance` in the background.
    pub fn spawn_join(&self, instance: &str, words: &str) -> Result<Running, DaemonError> {
        self.spawn(
            instance,
            &["network", "pair", "join", "--yes", "--code", words],
        )
    }

    /// Runs `pair join --yes --code WORDS` on `instance` to its end: its output and how long it
    /// took.
    pub fn join(&self, instance: &str, words: &str) -> Result<(Output, Duration), DaemonError> {
        let started = Instant::now();
        let out = self.run(
            instance,
            &[
                "--json", "network", "pair", "join", "--yes", "--code", words,
            ],
        )?;
        Ok((out, started.elapsed()))
    }

    /// Generates a code on `initiator` (auto-accept) and joins it from `joiner`; both must
    /// succeed, and the initiator's last report must be the pairing.
    pub fn pair(&self, initiator: &str, joiner: &str) -> Result<PairTimes, DaemonError> {
        self.pair_after(initiator, joiner, Duration::ZERO)
    }

    /// [`Daemons::pair`], with the join started `typing` after the code is shown (the time
    /// a person takes to type it, during which the initiator announces it).
    pub fn pair_after(
        &self,
        initiator: &str,
        joiner: &str,
        typing: Duration,
    ) -> Result<PairTimes, DaemonError> {
        let (mut generating, words) = self.generate(initiator, &["--auto-accept"])?;
        std::thread::sleep(typing);
        let started = Instant::now();
        let (joined, join) = self.join(joiner, &words)?;
        let joined_at = started + join;
        let join_command = describe(
            joiner,
            &["--json", "network", "pair", "join", "--yes", "--code", "…"],
        );
        if let Err(e) = succeeded(join_command, joined) {
            // The initiator would wait for its code to expire.
            let _ = generating.child.kill();
            let _ = generating.finish();
            return Err(e);
        }
        let (stored_at, last) = match generating.last_line(REPORT_PATIENCE) {
            Ok(last) => last,
            Err(e) => {
                let _ = generating.child.kill();
                let _ = generating.finish();
                return Err(e);
            }
        };
        let (status, _) = generating.finish()?;
        if !status.success() {
            return Err(DaemonError::Unexpected {
                command: generating_command(initiator),
                problem: format!("exited with {status}; its last report: {last}"),
            });
        }
        if paired_of(&last).is_none() {
            return Err(DaemonError::Unexpected {
                command: generating_command(initiator),
                problem: format!("its last report is not the pairing: {last}"),
            });
        }
        let both_stored_at = joined_at.max(stored_at);
        Ok(PairTimes {
            join,
            both_stored: both_stored_at - started,
            both_stored_at,
        })
    }
}

/// The arguments of `start` for a daemon on loopback with mDNS off, as every loopback test
/// must have.
fn loopback_args(instance: &str) -> [&str; 5] {
    [
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--name",
        instance,
    ]
}

fn generating_command(instance: &str) -> String {
    describe(
        instance,
        &["--json", "network", "pair", "generate", "--auto-accept"],
    )
}

/// The output of a finished command that must have succeeded: its standard output.
fn succeeded(command: String, out: Output) -> Result<String, DaemonError> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    Err(DaemonError::Failed {
        command,
        status: out.status,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Times of one pairing through the CLI, from starting `pair join`.
#[derive(Debug, Clone, Copy)]
pub struct PairTimes {
    /// Until the join command exited with success.
    pub join: Duration,
    /// Until both sides had stored the pairing: the join exited and the initiator's
    /// `generate` reported it.
    pub both_stored: Duration,
    /// When both sides had stored it, for timing from an earlier start.
    pub both_stored_at: Instant,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        let started = std::mem::take(&mut *self.started.lock().unwrap());
        for instance in started {
            let stopped = self
                .run(&instance, &["stop"])
                .is_ok_and(|out| out.status.success());
            if !stopped {
                if let Ok(pid) = self.pid(&instance) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `paircode relay` started by [`Daemons::relay_on`]; stopped with SIGTERM (as a service
/// manager would stop it) when dropped.
#[derive(Debug)]
pub struct MeetingPoint {
    child: Child,
    /// The first address it printed: `/ip4/…/tcp/…/p2p/…`.
    pub addr: String,
}

impl Drop for MeetingPoint {
    fn drop(&mut self) {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A CLI command running in the background; its standard output's lines are read (and
/// timestamped) by a thread, so a report's time is when it was printed, not when it was
/// asked for.
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    command: String,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Running {
    fn spawn(command: String, cmd: &mut Command) -> Result<Running, DaemonError> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| DaemonError::Spawn {
                command: command.clone(),
                source,
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        // Nobody reads stderr line by line; drain it so the command never blocks on it.
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            std::io::copy(&mut BufReader::new(stderr), &mut std::io::sink())
        });
        Ok(Running {
            child,
            command,
            lines,
        })
    }

    /// The next line the command prints and when, `None` once its output closed;
    /// waiting at most `patience` if given.
    fn recv(
        &mut self,
        patience: Option<Duration>,
    ) -> Result<Option<(Instant, String)>, DaemonError> {
        match patience {
            Some(p) => match self.lines.recv_timeout(p) {
                Ok(line) => Ok(Some(line)),
                Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
                Err(mpsc::RecvTimeoutError::Timeout) => Err(DaemonError::Timeout(format!(
                    "`{}` reports something",
                    self.command
                ))),
            },
            None => Ok(self.lines.recv().ok()),
        }
    }

    /// The next line, which must be JSON; an error if the command ends first.
    pub fn next_line(&mut self) -> Result<Value, DaemonError> {
        let (_, line) = self.recv(None)?.ok_or_else(|| self.ended("another line"))?;
        parse_json(line.trim()).map_err(|source| DaemonError::NotJson {
            command: self.command.clone(),
            line,
            source,
        })
    }

    /// The last JSON line the command prints before its output closes, and when it was
    /// printed; waiting at most `patience` for each line.
    fn last_line(&mut self, patience: Duration) -> Result<(Instant, Value), DaemonError> {
        let mut last = None;
        while let Some((at, line)) = self.recv(Some(patience))? {
            if let Ok(value) = parse_json(line.trim()) {
                last = Some((at, value));
            }
        }
        last.ok_or_else(|| self.ended("any report"))
    }

    /// Reads lines until one with `"event": event` (skipping lines that are not JSON); an
    /// error if the command ends first.
    pub fn wait_for(&mut self, event: &str) -> Result<Value, DaemonError> {
        let mut seen = Vec::new();
        while let Some((_, line)) = self.recv(None)? {
            if let Ok(value) = parse_json(line.trim()) {
                if event_of(&value) == Some(event) {
                    return Ok(value);
                }
                seen.push(value);
            }
        }
        Err(self.ended(&format!("{event} (seen: {seen:?})")))
    }

    /// Writes one line to the command's standard input (an answer to a prompt).
    pub fn answer(&mut self, line: &str) -> Result<(), DaemonError> {
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}").map_err(|source| DaemonError::Spawn {
            command: self.command.clone(),
            source,
        })
    }

    /// Waits for the command to end: its exit status and the JSON lines not read yet
    /// (lines that are not JSON are skipped).
    pub fn finish(mut self) -> Result<(ExitStatus, Vec<Value>), DaemonError> {
        let rest = self
            .lines
            .iter()
            .filter_map(|(_, line)| parse_json(line.trim()).ok())
            .collect();
        let status = self.child.wait().map_err(|source| DaemonError::Spawn {
            command: self.command.clone(),
            source,
        })?;
        Ok((status, rest))
    }

    fn ended(&self, before: &str) -> DaemonError {
        DaemonError::Unexpected {
            command: self.command.clone(),
            problem: format!("its output ended before {before}"),
        }
    }
}

/// A namespace lab and the daemons on its hosts, one instance per host, named after it.
/// Fields drop in order: the daemons are stopped before the lab kills whatever is left in
/// its namespaces and deletes them.
#[derive(Debug)]
pub struct Site {
    pub daemons: Daemons,
    pub lab: Lab,
}

impl Site {
    /// An empty lab for daemons of `bin`. Check [`crate::lab::skip_reason`] first.
    pub fn new(bin: impl Into<PathBuf>) -> Result<Site, DaemonError> {
        Ok(Site {
            daemons: Daemons::new(bin)?,
            lab: Lab::new(),
        })
    }

    /// Alice and Bob on one new LAN, daemons running with mDNS on; `impair_bob` gives Bob's
    /// link the means for delay and loss.
    pub fn alice_and_bob(&mut self, impair_bob: bool) -> Result<(Host, Host), DaemonError> {
        let lan = self.lab.lan()?;
        let alice = self.lab.host("alice", lan, false)?;
        let bob = self.lab.host("bob", lan, impair_bob)?;
        self.start(&alice, true, None)?;
        self.start(&bob, true, None)?;
        Ok((alice, bob))
    }

    /// Creates `host`'s instance (once) and starts its daemon there.
    pub fn start(
        &self,
        host: &Host,
        mdns: bool,
        bootstrap: Option<&str>,
    ) -> Result<(), DaemonError> {
        self.daemons.start_on(host, mdns, bootstrap)
    }

    /// [`Daemons::pair`] between two hosts' instances.
    pub fn pair(&self, initiator: &Host, joiner: &Host) -> Result<PairTimes, DaemonError> {
        self.daemons.pair(&initiator.name, &joiner.name)
    }
}

// The shape of the CLI's `--json` output: everything that knows it is below.

// Every line is an envelope naming the schema: a streamed event
// `{"schema", "event": …, …}`, or the one line that ends a command, its result
// `{"schema", "ok": true, "result": …}` or its error
// `{"schema", "ok": false, "error": {"kind", "message", "exit"}}`. The accessors below
// answer `None` for a line that is not the envelope they read.

/// One line (or the whole output) of a `--json` command: the envelope, which the
/// accessors below read.
pub fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text)
}

/// The line names this harness's schema.
fn in_schema(line: &Value) -> bool {
    line["schema"] == SCHEMA
}

/// Every line of a `--json` command's output, each of which must be JSON.
fn json_lines(command: &str, stdout: &str) -> Result<Vec<Value>, DaemonError> {
    stdout
        .lines()
        .map(|line| {
            parse_json(line.trim()).map_err(|source| DaemonError::NotJson {
                command: command.to_owned(),
                line: line.to_owned(),
                source,
            })
        })
        .collect()
}

/// The `result` of a successful command's final envelope.
pub fn result_of(line: &Value) -> Option<&Value> {
    (in_schema(line) && line["ok"] == true)
        .then(|| line.get("result"))
        .flatten()
}

/// The `error` of a failed command's final envelope, if it has a kind, a message and an
/// exit code.
pub fn error_of(line: &Value) -> Option<&Value> {
    let error = (in_schema(line) && line["ok"] == false)
        .then(|| line.get("error"))
        .flatten()?;
    let complete =
        error["kind"].is_string() && error["message"].is_string() && error["exit"].is_i64();
    complete.then_some(error)
}

/// The exit code an error envelope's `error` names.
pub fn exit_of(error: &Value) -> Option<i32> {
    error["exit"].as_i64().and_then(|c| i32::try_from(c).ok())
}

/// The `"event"` a streamed report names, if it is one.
pub fn event_of(line: &Value) -> Option<&str> {
    in_schema(line).then(|| line["event"].as_str()).flatten()
}

/// The code words of the `code` event `pair generate` prints first.
pub fn words_of(line: &Value) -> Option<&str> {
    (event_of(line) == Some("code"))
        .then(|| line["words"].as_str())
        .flatten()
}

/// The device a pairing command's successful result says it paired with.
pub fn paired_of(line: &Value) -> Option<&Value> {
    result_of(line)?.get("paired").filter(|p| p.is_object())
}

/// The error a finished command reported in its JSON lines.
pub fn error_in(lines: &[Value]) -> Option<&Value> {
    lines.iter().find_map(error_of)
}

/// `value[key][index]` as a string.
fn field_str(
    value: &Value,
    key: &str,
    index: usize,
    command: impl FnOnce() -> String,
) -> Result<String, DaemonError> {
    value[key][index]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| DaemonError::Unexpected {
            command: command(),
            problem: format!("no {key}[{index}] in {value}"),
        })
}
