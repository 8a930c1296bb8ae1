//! `paircode`: pair devices with a 12-word code.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use paircode_cli::client::Client;
use paircode_cli::devices::{save_identity, DeviceList, IdentityRecord};
use paircode_cli::error::{CliError, UsageError};
use paircode_cli::instance::{Instance, DEVICES_FILE, IDENTITY_FILE};
use paircode_cli::ipc::{DeviceView, Event, Request, Response, StatusInfo};
use paircode_cli::output;
use paircode_cli::password::{self, Confirm};
use paircode_cli::progress::Progress;
use paircode_cli::relay;
use paircode_cli::start::{self, StartOptions};
use paircode_cli::store::{KdfParams, Vault};
use paircode_core::{Code, DeviceIdentity};

#[derive(Parser)]
#[command(name = "paircode", version, about = "Pair devices with a 12-word code")]
struct Cli {
    /// Which daemon to talk to; several can run on one machine.
    #[arg(long, global = true, default_value = "default")]
    instance: String,
    /// Where instances keep their files (default: the platform's data directory).
    #[arg(long, global = true, env = "PAIRCODE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Machine-readable output: one JSON envelope per line (`{"schema":"paircode/1",…}`),
    /// errors included.
    #[arg(long, global = true)]
    json: bool,
    /// More detail in the daemon's log (RUST_LOG overrides).
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start this instance's daemon (in the background unless --foreground).
    Start(StartArgs),
    /// Stop this instance's daemon.
    Stop,
    /// Is the daemon running, and what is it doing?
    Status,
    /// Identity, pairing and paired devices.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Run a meeting point (DHT, relay, AutoNAT) for devices on other networks.
    Relay(relay::RelayArgs),
}

#[derive(Args)]
struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// The password itself (visible to other users in `ps`; prefer the prompt).
    #[arg(long, value_name = "VALUE")]
    password: Option<String>,
}

#[derive(Args)]
struct StartArgs {
    /// Stay attached to this terminal.
    #[arg(long)]
    foreground: bool,
    /// Set by `start` for the daemon it detaches.
    #[arg(long, hide = true)]
    detached: bool,
    /// Address to listen on (repeatable), e.g. /ip4/0.0.0.0/tcp/0.
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// DHT entry point (repeatable): /ip4/…/tcp/…/p2p/<peer id>.
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<String>,
    /// No LAN discovery (for loopback-only setups).
    #[arg(long)]
    no_mdns: bool,
    /// This device's name as others see it (default: the host name).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Create this instance's device identity, encrypted with a password.
    Init {
        /// Start over even though the instance has a store: a new identity and no paired
        /// devices. A copy of each existing file is kept next to it.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Pair with another device.
    Pair {
        #[command(subcommand)]
        command: PairCommand,
    },
    /// List paired devices.
    Devices,
    /// Forget a paired device (by name or peer id).
    Unpair { who: String },
}

#[derive(Subcommand)]
enum PairCommand {
    /// Show a code for the other device to join with, and wait for it.
    Generate {
        /// Pair without asking for confirmation.
        #[arg(long)]
        auto_accept: bool,
        /// How long the code stays valid, in seconds.
        #[arg(long, value_name = "SECS")]
        expires: Option<u64>,
    },
    /// Join the device showing this code.
    Join {
        /// The 12 words, quoted (or give them as separate arguments, or on stdin).
        #[arg(long)]
        code: Option<String>,
        /// Pair with the device that proves the code without asking for confirmation.
        #[arg(long, short = 'y', alias = "auto-accept")]
        yes: bool,
        words: Vec<String>,
    },
    /// The running pairing session, if any.
    Status,
    /// Cancel the running pairing session.
    Cancel,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(e),
    };
    let json = cli.json;
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(json, &e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// clap's verdict on the arguments: help and version as clap prints them, errors as the
/// JSON envelope when `--json` was given.
fn usage(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let shown = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if shown || !json {
        e.exit();
    }
    let text = e.render().to_string();
    let message = text.trim().trim_start_matches("error: ").to_string();
    let error = CliError::from(UsageError::Arguments(message));
    output::error(true, &error);
    ExitCode::from(error.exit_code())
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let instance = Instance::resolve(cli.data_dir.as_deref(), &cli.instance)?;
    let json = cli.json;
    match cli.command {
        Command::Start(args) => {
            let opts = StartOptions {
                listen: args.listen,
                bootstrap: args.bootstrap,
                no_mdns: args.no_mdns,
                name: args.name,
                password_stdin: args.password.password_stdin,
                password: args.password.password,
                verbose: cli.verbose,
            };
            if args.foreground {
                return start::run_foreground(&instance, opts, args.detached, json).await;
            }
            let pid = tokio::task::block_in_place(|| start::spawn_background(&instance, opts))?;
            match Client::call(&instance, &Request::Status).await? {
                Response::Status(status) => print_status(json, &status),
                other => return Err(unexpected(other)),
            }
            if !json {
                output::line(format_args!(
                    "started (pid {pid}); log: {}",
                    instance.log_file().display()
                ));
            }
            Ok(())
        }
        Command::Stop => {
            Client::call(&instance, &Request::Stop).await?;
            // The daemon exits once it has closed its connections; wait for its lock.
            for _ in 0..100 {
                if paircode_cli::lock::DaemonLock::holder(&instance.lock_file()).is_none() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            output::result(
                json,
                serde_json::json!({ "stopped": instance.name }),
                format_args!("stopped '{}'", instance.name),
            );
            Ok(())
        }
        Command::Status => match Client::call(&instance, &Request::Status).await? {
            Response::Status(status) => {
                print_status(json, &status);
                Ok(())
            }
            other => Err(unexpected(other)),
        },
        Command::Network { command } => network(&instance, json, command).await,
        Command::Relay(args) => Ok(relay::run(&instance.dir, args, cli.verbose).await?),
    }
}

async fn network(instance: &Instance, json: bool, command: NetworkCommand) -> Result<(), CliError> {
    match command {
        NetworkCommand::Init { force, password } => init(instance, json, force, password),
        NetworkCommand::Devices => match Client::call(instance, &Request::Devices).await? {
            Response::Devices(devices) => {
                print_devices(json, &devices);
                Ok(())
            }
            other => Err(unexpected(other)),
        },
        NetworkCommand::Unpair { who } => {
            match Client::call(instance, &Request::Unpair { who }).await? {
                Response::Unpaired(device) => {
                    let text = format!("unpaired {} ({})", device.name, device.peer_id);
                    output::result(json, serde_json::json!({ "unpaired": device }), text);
                    Ok(())
                }
                other => Err(unexpected(other)),
            }
        }
        NetworkCommand::Pair { command } => match command {
            PairCommand::Generate {
                auto_accept,
                expires,
            } => generate(instance, json, auto_accept, expires).await,
            PairCommand::Join { code, yes, words } => join(instance, json, code, yes, words).await,
            PairCommand::Status => match Client::call(instance, &Request::PairStatus).await? {
                Response::PairStatus(session) => {
                    let text = match &session {
                        Some(s) => format!("{}: {}", s.role, s.stage),
                        None => "no pairing session".to_string(),
                    };
                    output::result(json, serde_json::json!({ "session": session }), text);
                    Ok(())
                }
                other => Err(unexpected(other)),
            },
            PairCommand::Cancel => {
                Client::call(instance, &Request::PairCancel).await?;
                output::result(json, serde_json::json!({ "cancelled": true }), "cancelled");
                Ok(())
            }
        },
    }
}

/// Never overwrites a store silently: with files present it refuses, unless `--force`,
/// which first keeps a timestamped copy of each.
fn init(instance: &Instance, json: bool, force: bool, args: PasswordArgs) -> Result<(), CliError> {
    let existing: Vec<_> = [IDENTITY_FILE, DEVICES_FILE]
        .iter()
        .map(|name| instance.dir.join(name))
        .filter(|path| path.symlink_metadata().is_ok())
        .collect();
    if !existing.is_empty() && !force {
        return Err(CliError::AlreadyInitialised {
            instance: instance.name.clone(),
            files: existing,
        });
    }
    if let Some(pid) = paircode_cli::lock::DaemonLock::holder(&instance.lock_file()) {
        return Err(paircode_cli::lock::LockError::AlreadyRunning {
            pid: pid.to_string(),
        }
        .into());
    }
    let password = password::obtain(args.password_stdin, args.password, Confirm::Twice)?;
    let backups = existing
        .iter()
        .map(|path| back_up(path))
        .collect::<Result<Vec<_>, _>>()?;
    let vault = Vault::create(&instance.dir, password.as_bytes(), KdfParams::default())?;
    drop(password);
    let identity = DeviceIdentity::generate(&mut rand_core::OsRng);
    // The list first: once the identity exists, a missing list means a lost one.
    DeviceList::default().save(&vault)?;
    save_identity(
        &vault,
        &IdentityRecord::new(&identity, paircode_cli::daemon::unix_now()),
    )?;
    let peer = identity.peer_id().to_string();
    let mut text = String::new();
    for copy in &backups {
        text.push_str(&format!(
            "kept a copy of the old store: {}\n",
            copy.display()
        ));
    }
    text.push_str(&format!("initialised '{}': peer id {peer}", instance.name));
    output::result(
        json,
        serde_json::json!({ "instance": instance.name, "peer_id": peer, "backups": backups }),
        text,
    );
    Ok(())
}

/// Copies `path` to `path.bak-<UTC time>` (never over an earlier copy).
fn back_up(path: &std::path::Path) -> Result<PathBuf, CliError> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut copy = path.with_file_name(format!("{name}.bak-{stamp}"));
    let mut n = 1;
    while copy.symlink_metadata().is_ok() {
        n += 1;
        copy = path.with_file_name(format!("{name}.bak-{stamp}-{n}"));
    }
    std::fs::copy(path, &copy).map_err(|source| CliError::Backup {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(copy)
}

async fn generate(
    instance: &Instance,
    json: bool,
    auto_accept: bool,
    expires: Option<u64>,
) -> Result<(), CliError> {
    let mut client = Client::connect(instance).await?;
    client
        .send(&Request::Generate {
            auto_accept,
            expires_secs: expires,
        })
        .await?;
    let (words, expires_secs) = match client.receive().await? {
        Response::Code {
            words,
            expires_secs,
        } => (words, expires_secs),
        other => return Err(unexpected(other)),
    };
    if json {
        output::event(
            "code",
            serde_json::json!({ "words": words, "expires_secs": expires_secs }),
        );
    } else {
        output::line(format_args!(
            "Pairing code (valid for {}:{:02}):\n\n    {words}\n",
            expires_secs / 60,
            expires_secs % 60
        ));
        if let Some(qr) = paircode_cli::progress::qr(&words) {
            output::line(qr);
        }
        output::line(
            "On the other device run:  paircode network pair join --code \"<the 12 words>\"",
        );
    }
    let progress = Progress::new(json, Some("waiting for the other device…"));
    follow(&mut client, json, progress).await
}

async fn join(
    instance: &Instance,
    json: bool,
    code: Option<String>,
    auto_accept: bool,
    words: Vec<String>,
) -> Result<(), CliError> {
    let typed = match (code, words.is_empty()) {
        (Some(code), _) => zeroize::Zeroizing::new(code),
        (None, false) => zeroize::Zeroizing::new(words.join(" ")),
        (None, true) => read_code_from_stdin()?,
    };
    // Checked here, before anything is sent: a typo is caught while the user still looks.
    let code = Code::parse(&typed)?;
    let mut client = Client::connect(instance).await?;
    client
        .send(&Request::Join {
            words: code.words().to_string(),
            auto_accept,
        })
        .await?;
    let progress = Progress::new(json, None);
    follow(&mut client, json, progress).await
}

fn read_code_from_stdin() -> Result<zeroize::Zeroizing<String>, CliError> {
    if std::io::stdin().is_terminal() {
        eprint!("Code: ");
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|source| CliError::Input {
            what: "the code",
            source,
        })?;
    Ok(line)
}

/// Shows a session's progress until its outcome; Ctrl+C drops the connection, which
/// cancels the session in the daemon.
async fn follow(client: &mut Client, json: bool, mut progress: Progress) -> Result<(), CliError> {
    loop {
        let response = tokio::select! {
            r = client.receive() => r?,
            _ = tokio::signal::ctrl_c() => {
                progress.finish();
                return Err(CliError::Interrupted);
            }
        };
        let Response::Event(event) = response else {
            return Err(unexpected(response));
        };
        match event {
            Event::Searching => progress.stage(
                "searching",
                serde_json::json!({}),
                "searching for the device with this code…",
            ),
            Event::Found { name, peer } => {
                let text = format!("found {name} ({}), verifying…", short(&peer));
                progress.stage(
                    "found",
                    serde_json::json!({ "name": name, "peer_id": peer }),
                    &text,
                );
            }
            Event::ConfirmRequested {
                name,
                peer,
                verification,
            } => {
                progress.pause();
                let accept = ask(json, &name, &peer, &verification).await?;
                client.send(&Request::Confirm { accept }).await?;
                progress.resume("finishing…");
            }
            Event::Paired(device) => {
                progress.finish();
                let text = format!("paired with {} ({})", device.name, device.peer_id);
                output::result(json, serde_json::json!({ "paired": device }), text);
                return Ok(());
            }
            Event::Failed(error) => {
                progress.finish();
                return Err(error.into());
            }
        }
    }
}

/// Asks whether to pair, showing the verification string: the other screen must show the
/// same words, or someone else is in the middle.
async fn ask(json: bool, name: &str, peer: &str, verification: &str) -> Result<bool, CliError> {
    if json {
        output::event(
            "confirm",
            serde_json::json!({ "name": name, "peer_id": peer, "verification": verification }),
        );
    } else {
        eprint!(
            "Pair with {name} ({})?\n  Verification: {verification}\n  \
             Check that the other screen shows the same words. [y/N] ",
            short(peer)
        );
    }
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| CliError::Input {
        what: "the answer",
        source: std::io::Error::other(e),
    })?
    .map_err(|source| CliError::Input {
        what: "the answer",
        source,
    })?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

fn short(peer: &str) -> String {
    let skip = peer.chars().count().saturating_sub(8);
    format!("…{}", peer.chars().skip(skip).collect::<String>())
}

fn unexpected(response: Response) -> CliError {
    CliError::Unexpected(Box::new(response))
}

fn print_status(json: bool, status: &StatusInfo) {
    if json {
        output::result(json, serde_json::json!(status), "");
        return;
    }
    output::line(format_args!(
        "instance:  {} (pid {})",
        status.instance, status.pid
    ));
    output::line(format_args!("device:    {}", status.name));
    output::line(format_args!("peer id:   {}", status.peer_id));
    for addr in &status.listen {
        output::line(format_args!("listening: {addr}"));
    }
    output::line(format_args!(
        "mDNS:      {}",
        if status.mdns { "on" } else { "off" }
    ));
    output::line(format_args!(
        "paired:    {} device(s)",
        status.paired_devices
    ));
    match &status.session {
        Some(s) => output::line(format_args!("session:   {} — {}", s.role, s.stage)),
        None => output::line("session:   none"),
    }
}

fn print_devices(json: bool, devices: &[DeviceView]) {
    if json {
        output::result(json, serde_json::json!(devices), "");
        return;
    }
    if devices.is_empty() {
        output::line("no paired devices");
        return;
    }
    output::line(format_args!(
        "{:<20} {:<54} {:<22} STATUS",
        "NAME", "PEER ID", "PAIRED AT"
    ));
    for d in devices {
        let status = match (d.online, d.last_seen) {
            (true, _) => "online".to_string(),
            (false, Some(seen)) => format!("last seen {}", paircode_cli::progress::time(seen)),
            (false, None) => "never seen".to_string(),
        };
        output::line(format_args!(
            "{:<20} {:<54} {:<22} {status}",
            d.name,
            d.peer_id,
            paircode_cli::progress::time(d.paired_at)
        ));
    }
}
