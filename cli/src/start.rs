//! Bringing the daemon up: in the foreground, or detached with the password handed over a
//! pipe (never argv, never the environment of the detached process).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use paircode_net::{Multiaddr, NodeConfig};
use tokio::net::UnixListener;

use crate::daemon::{Daemon, Transfers};
use crate::devices::{host_name, load_identity, save_identity, DeviceList};
use crate::error::CliError;
use crate::instance::{Instance, IDENTITY_FILE};
use crate::lock::{DaemonLock, LockError};
use crate::output;
use crate::password::{self, Confirm};
use crate::store::{StoreError, Vault};
use crate::transfer::log::ReceivedLog;
use crate::transfer::receive::Inbox;

/// What `paircode start` was given, forwarded verbatim to a detached daemon.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Checked by [`crate::addr`] while the arguments were parsed.
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    /// `--relay` flags; empty means "from the environment or the relays file".
    pub relay: Vec<Multiaddr>,
    pub no_mdns: bool,
    pub name: Option<String>,
    pub password_stdin: bool,
    pub password: Option<String>,
    pub verbose: bool,
    /// Where received files go (default: [`default_downloads`]).
    pub downloads: Option<PathBuf>,
}

/// The platform's download directory's `paircode` folder, or the instance's own
/// `downloads` directory where the platform has none (a headless server).
pub fn default_downloads(instance: &Instance) -> PathBuf {
    directories::UserDirs::new()
        .and_then(|dirs| dirs.download_dir().map(|d| d.join("paircode")))
        .unwrap_or_else(|| instance.dir.join("downloads"))
}

const READY: &str = "ready";

pub fn not_initialised(instance: &Instance) -> CliError {
    CliError::NotInitialised {
        instance: instance.name.clone(),
    }
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
        true => vec![crate::addr::LISTEN_EXAMPLE
            .parse()
            .expect("valid multiaddr")],
        false => opts.listen.clone(),
    };
    let env = std::env::var(crate::meeting_points::ENV_VAR).ok();
    let (relays, _) = crate::meeting_points::resolve(&opts.relay, env, instance)?;
    let lock = DaemonLock::acquire(&instance.lock_file())?;
    let prompted = password::prompts(opts.password_stdin, opts.password.as_deref());
    let mut tries = 1;
    let vault = loop {
        let password = password::obtain(opts.password_stdin, opts.password.clone(), Confirm::Once)?;
        match Vault::open(&instance.dir, IDENTITY_FILE, password.as_bytes()) {
            Err(e @ StoreError::WrongPassword { .. }) if prompted && tries < password::TRIES => {
                eprintln!("{e}");
                tries += 1;
            }
            outcome => break outcome?,
        }
    };
    let mut identity = load_identity(&vault)?.ok_or_else(|| not_initialised(instance))?;
    // `--name` is remembered, so a later start without it keeps the name.
    let name = match &opts.name {
        Some(name) if identity.name.as_ref() != Some(name) => {
            identity.name = Some(name.clone());
            save_identity(&vault, &identity)?;
            name.clone()
        }
        Some(name) => name.clone(),
        None => identity.name.clone().unwrap_or_else(host_name),
    };
    let devices = DeviceList::load(&vault)?;
    let received = ReceivedLog::load(&vault)?;
    let downloads = match &opts.downloads {
        Some(dir) => std::path::absolute(dir),
        None => Ok(default_downloads(instance)),
    }
    .and_then(Inbox::open)
    .map_err(|source| CliError::Downloads {
        path: opts
            .downloads
            .clone()
            .unwrap_or_else(|| default_downloads(instance)),
        source,
    })?;
    crate::logging::init(
        instance,
        opts.verbose,
        !opts.bootstrap.is_empty(),
        !detached,
    )?;

    let mdns = !opts.no_mdns;
    let mut config = NodeConfig::new(identity.identity(), name.clone());
    config.listen = listen;
    config.bootstrap = opts.bootstrap.clone();
    config.relays = relays;
    config.mdns = mdns;
    // Under the instance's lock: no other daemon of this instance is saving.
    let stale_temps = vault.remove_stale_temps();
    if stale_temps > 0 {
        tracing::info!(
            removed = stale_temps,
            "removed temporary files of saves a crash interrupted"
        );
    }
    let (fds, limits) = crate::fd_limit::connection_limits();
    tracing::info!(fds, ?limits, "connection limits");
    config.limits = limits;
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
            paircode_core::name::escaped(&name),
            node.peer_id()
        );
        for addr in addrs {
            let _ = writeln!(out, "  listening on {addr}");
        }
    }
    let transfers = Transfers::new(downloads, received);
    let outcome = Daemon::new(
        instance.clone(),
        node,
        vault,
        name,
        mdns,
        code_ttl,
        devices,
        transfers,
    )
    .serve(listener)
    .await;
    drop(lock);
    outcome?;
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
    // A password typed at the prompt can be typed again; one from a file or the
    // environment would only fail the same way.
    let prompted = password::prompts(opts.password_stdin, opts.password.as_deref());
    let mut tries = 1;
    loop {
        let password = password::obtain(opts.password_stdin, opts.password.clone(), Confirm::Once)?;
        match spawn_once(instance, &opts, &password) {
            Err(CliError::Reported(body))
                if prompted && body.kind == "wrong_password" && tries < password::TRIES =>
            {
                eprintln!("{}", body.message);
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The daemon's program, `paircode-daemon`: next to the running `paircode`, where
/// `cargo install` and `cargo build` put it.
pub fn daemon_program() -> Result<PathBuf, CliError> {
    const NAME: &str = "paircode-daemon";
    let exe = std::env::current_exe().map_err(|source| CliError::Spawn {
        what: "locating paircode",
        source,
    })?;
    let path = exe.with_file_name(NAME);
    match path.is_file() {
        true => Ok(path),
        false => Err(CliError::DaemonProgram {
            path,
            source: std::io::ErrorKind::NotFound.into(),
        }),
    }
}

/// Becomes `paircode-daemon` with this process's own arguments (`start --foreground`,
/// `relay`): same pid, terminal and standard streams. Returns only if that failed.
pub fn exec_daemon() -> CliError {
    let program = match daemon_program() {
        Ok(program) => program,
        Err(e) => return e,
    };
    let source = crate::memory::daemon_tunables(&mut Command::new(&program))
        .args(std::env::args_os().skip(1))
        .exec();
    CliError::DaemonProgram {
        path: program,
        source,
    }
}

/// One attempt at a detached daemon with this password.
fn spawn_once(instance: &Instance, opts: &StartOptions, password: &str) -> Result<u32, CliError> {
    let exe = daemon_program()?;
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
        command.arg("--listen").arg(addr.to_string());
    }
    for addr in &opts.bootstrap {
        command.arg("--bootstrap").arg(addr.to_string());
    }
    for addr in &opts.relay {
        command.arg("--relay").arg(addr.to_string());
    }
    if opts.no_mdns {
        command.arg("--no-mdns");
    }
    if let Some(name) = &opts.name {
        command.arg("--name").arg(name);
    }
    if let Some(dir) = &opts.downloads {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        command.arg("--downloads").arg(dir);
    }
    if opts.verbose {
        command.arg("--verbose");
    }
    crate::memory::daemon_tunables(&mut command)
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
