//! Bringing the daemon up: in the foreground, or detached with the password handed over a
//! pipe (never argv, never the environment of the detached process).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use paircode_net::{Multiaddr, NodeConfig};
use tokio::net::UnixListener;

use crate::daemon::Daemon;
use crate::devices::{load_identity, DeviceList};
use crate::error::{CliError, UsageError};
use crate::instance::{Instance, IDENTITY_FILE};
use crate::lock::{DaemonLock, LockError};
use crate::output;
use crate::password::{self, Confirm};
use crate::store::Vault;

/// What `paircode start` was given, forwarded verbatim to a detached daemon.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub listen: Vec<String>,
    pub bootstrap: Vec<String>,
    /// `--relay` flags; empty means "from the environment or the relays file".
    pub relay: Vec<String>,
    pub no_mdns: bool,
    pub name: Option<String>,
    pub password_stdin: bool,
    pub password: Option<String>,
    pub verbose: bool,
}

const READY: &str = "ready";

pub fn not_initialised(instance: &Instance) -> CliError {
    CliError::NotInitialised {
        instance: instance.name.clone(),
    }
}

fn parse_addrs(values: &[String], what: &'static str) -> Result<Vec<Multiaddr>, CliError> {
    values
        .iter()
        .map(|v| {
            v.parse::<Multiaddr>().map_err(|e| {
                CliError::from(UsageError::Multiaddr {
                    what,
                    value: v.clone(),
                    reason: e.to_string(),
                })
            })
        })
        .collect()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "paircode device".to_string())
}

/// Runs the daemon in this process until it is stopped. With `detached`, readiness is
/// reported on stdout for the parent, and the standard streams are then let go; otherwise
/// the daemon says where it listens (with `json`, as a `started` event, and a final
/// envelope once it has stopped).
pub async fn run_foreground(
    instance: &Instance,
    opts: StartOptions,
    detached: bool,
    json: bool,
) -> Result<(), CliError> {
    if !instance.is_initialised() {
        return Err(not_initialised(instance));
    }
    let listen = match opts.listen.is_empty() {
        true => vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")],
        false => parse_addrs(&opts.listen, "listen")?,
    };
    let bootstrap = parse_addrs(&opts.bootstrap, "bootstrap")?;
    let env = std::env::var(crate::meeting_points::ENV_VAR).ok();
    let (relays, _) = crate::meeting_points::resolve(&opts.relay, env, instance)?;
    let lock = DaemonLock::acquire(&instance.lock_file())?;
    let password = password::obtain(opts.password_stdin, opts.password.clone(), Confirm::Once)?;
    let vault = Vault::open(&instance.dir, IDENTITY_FILE, password.as_bytes())?;
    drop(password);
    let identity = load_identity(&vault)?.ok_or_else(|| not_initialised(instance))?;
    let devices = DeviceList::load(&vault)?;
    crate::logging::init(instance, opts.verbose, !detached)?;

    let name = opts.name.clone().unwrap_or_else(host_name);
    let mdns = !opts.no_mdns;
    let mut config = NodeConfig::new(identity.identity(), name.clone());
    config.listen = listen;
    config.bootstrap = bootstrap;
    config.relays = relays;
    config.mdns = mdns;
    let code_ttl = config.pairing.code_ttl;
    let node = paircode_tokio::start(config)
        .await
        .map_err(CliError::Node)?;

    // We hold the lock, so a socket file left here belongs to a daemon that died.
    let socket = instance.socket();
    let _ = std::fs::remove_file(&socket);
    let socket_error = |source| CliError::Socket {
        path: socket.clone(),
        source,
    };
    let listener = UnixListener::bind(&socket).map_err(socket_error)?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(socket_error)?;

    tracing::info!(peer = %node.peer_id(), mdns, "daemon started");
    // A daemon keeps running whoever stops reading its stdout: write errors are ignored.
    let mut out = std::io::stdout();
    if detached {
        let _ = writeln!(out, "{READY}").and_then(|()| out.flush());
        release_standard_streams();
    } else if json {
        let addrs = node.listen_addrs().await.unwrap_or_default();
        let event = output::event_json(
            "started",
            serde_json::json!({
                "instance": instance.name,
                "name": name,
                "peer_id": node.peer_id().to_string(),
                "listen": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        );
        let _ = writeln!(out, "{event}").and_then(|()| out.flush());
    } else {
        let addrs = node.listen_addrs().await.unwrap_or_default();
        let _ = writeln!(
            out,
            "paircode daemon for '{}' running as {} ({})",
            instance.name,
            name,
            node.peer_id()
        );
        for addr in addrs {
            let _ = writeln!(out, "  listening on {addr}");
        }
    }
    Daemon::new(instance.clone(), node, vault, name, mdns, code_ttl, devices)
        .serve(listener)
        .await;
    drop(lock);
    if json && !detached {
        let stopped = output::result_json(serde_json::json!({ "stopped": instance.name }));
        let _ = writeln!(out, "{stopped}");
    }
    Ok(())
}

/// A detached daemon must not die of EPIPE when the terminal that started it goes away.
fn release_standard_streams() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    use std::os::fd::AsRawFd;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors of our own process.
        unsafe {
            libc::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// Starts a detached daemon and waits until it is ready or has failed.
pub fn spawn_background(instance: &Instance, opts: StartOptions) -> Result<u32, CliError> {
    if !instance.is_initialised() {
        return Err(not_initialised(instance));
    }
    if let Some(pid) = DaemonLock::holder(&instance.lock_file()) {
        return Err(LockError::AlreadyRunning {
            pid: pid.to_string(),
        }
        .into());
    }
    let password = password::obtain(opts.password_stdin, opts.password.clone(), Confirm::Once)?;
    let exe = std::env::current_exe().map_err(|source| CliError::Spawn {
        what: "locating paircode",
        source,
    })?;
    let data_dir = instance.dir.parent().unwrap_or(Path::new("."));
    let mut command = Command::new(exe);
    command
        .arg("--instance")
        .arg(&instance.name)
        .arg("--data-dir")
        .arg(data_dir)
        // A failure to start comes back as the JSON envelope, kind and exit code included.
        .arg("--json")
        .args(["start", "--foreground", "--detached", "--password-stdin"]);
    for addr in &opts.listen {
        command.arg("--listen").arg(addr);
    }
    for addr in &opts.bootstrap {
        command.arg("--bootstrap").arg(addr);
    }
    for addr in &opts.relay {
        command.arg("--relay").arg(addr);
    }
    if opts.no_mdns {
        command.arg("--no-mdns");
    }
    if let Some(name) = &opts.name {
        command.arg("--name").arg(name);
    }
    if opts.verbose {
        command.arg("--verbose");
    }
    command
        .env_remove(password::ENV_VAR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our terminal so a
    // Ctrl+C there does not reach it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| CliError::Spawn {
        what: "starting the daemon",
        source,
    })?;
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut line = zeroize::Zeroizing::new(password.to_string());
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .map_err(|source| CliError::Spawn {
                what: "handing the password to the daemon",
                source,
            })?;
    }
    let mut ready = String::new();
    let _ = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut ready);
    if ready.trim() == READY {
        return Ok(child.id());
    }
    let status = child.wait().map_err(|source| CliError::Spawn {
        what: "waiting for the daemon",
        source,
    })?;
    if let Some(reported) = crate::output::parse_error(&ready) {
        return Err(CliError::Reported(reported));
    }
    // Not even an envelope (a crash): whatever it said is all there is.
    let mut said = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut said);
    }
    Err(CliError::DaemonExited {
        status,
        said: said.trim().to_string(),
    })
}
