//! `paircode`: pair devices with a 12-word code.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use paircode_cli::client::Client;
use paircode_cli::devices::{save_identity, DeviceList, IdentityRecord};
use paircode_cli::exit::{CliError, Exit};
use paircode_cli::instance::Instance;
use paircode_cli::ipc::{DeviceView, Event, Request, Response, StatusInfo};
use paircode_cli::password::{self, Confirm};
use paircode_cli::progress::Progress;
use paircode_cli::start::{self, StartOptions};
use paircode_cli::store::{KdfParams, Vault};
use paircode_core::{Code, DeviceIdentity};

mod relay;

#[derive(Parser)]
#[command(name = "paircode", version, about = "Pair devices with a 12-word code")]
struct Cli {
    /// Which daemon to talk to; several can run on one machine.
    #[arg(long, global = true, default_value = "default")]
    instance: String,
    /// Where instances keep their files (default: the platform's data directory).
    #[arg(long, global = true, env = "PAIRCODE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Machine-readable output (one JSON value per line).
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
        words: Vec<String>,
    },
    /// The running pairing session, if any.
    Status,
    /// Cancel the running pairing session.
    Cancel,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                json,
                &CliError::new(Exit::Failure, format!("starting the runtime: {e}")),
            )
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(json, &e),
    }
}

fn report(json: bool, error: &CliError) -> ExitCode {
    if json {
        let value =
            serde_json::json!({ "error": { "code": error.exit as u8, "message": error.message } });
        println!("{value}");
    } else {
        eprintln!("error: {}", error.message);
    }
    ExitCode::from(error.exit as u8)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let instance = Instance::resolve(cli.data_dir.as_deref(), &cli.instance)
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
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
                return start::run_foreground(&instance, opts, args.detached).await;
            }
            let pid = tokio::task::block_in_place(|| start::spawn_background(&instance, opts))?;
            match Client::call(&instance, &Request::Status).await? {
                Response::Status(status) => print_status(json, &status),
                other => return Err(unexpected(other)),
            }
            if !json {
                println!(
                    "started (pid {pid}); log: {}",
                    instance.log_file().display()
                );
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
            print_line(
                json,
                serde_json::json!({ "stopped": instance.name }),
                &format!("stopped '{}'", instance.name),
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
        Command::Relay(args) => relay::run(&instance.dir, args, cli.verbose)
            .await
            .map_err(|e| CliError::new(Exit::Failure, e.to_string())),
    }
}

async fn network(instance: &Instance, json: bool, command: NetworkCommand) -> Result<(), CliError> {
    match command {
        NetworkCommand::Init { password } => init(instance, json, password),
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
                    print_line(json, serde_json::json!({ "unpaired": device }), &text);
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
            PairCommand::Join { code, words } => join(instance, json, code, words).await,
            PairCommand::Status => match Client::call(instance, &Request::PairStatus).await? {
                Response::PairStatus(session) => {
                    let text = match &session {
                        Some(s) => format!("{}: {}", s.role, s.stage),
                        None => "no pairing session".to_string(),
                    };
                    print_line(json, serde_json::json!({ "session": session }), &text);
                    Ok(())
                }
                other => Err(unexpected(other)),
            },
            PairCommand::Cancel => {
                Client::call(instance, &Request::PairCancel).await?;
                print_line(json, serde_json::json!({ "cancelled": true }), "cancelled");
                Ok(())
            }
        },
    }
}

fn init(instance: &Instance, json: bool, args: PasswordArgs) -> Result<(), CliError> {
    if instance.is_initialised() {
        return Err(CliError::new(
            Exit::Failure,
            format!(
                "instance '{}' already has a device identity; nothing was changed",
                instance.name
            ),
        ));
    }
    let password = password::obtain(args.password_stdin, args.password, Confirm::Twice)
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    let vault = Vault::create(&instance.dir, password.as_bytes(), KdfParams::default())?;
    drop(password);
    let identity = DeviceIdentity::generate(&mut rand_core::OsRng);
    save_identity(
        &vault,
        &IdentityRecord::new(&identity, paircode_cli::daemon::unix_now()),
    )?;
    DeviceList::default().save(&vault)?;
    let peer = identity.peer_id().to_string();
    let text = format!("initialised '{}': peer id {peer}", instance.name);
    print_line(
        json,
        serde_json::json!({ "instance": instance.name, "peer_id": peer }),
        &text,
    );
    Ok(())
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
        println!(
            "{}",
            serde_json::json!({ "event": "code", "words": words, "expires_secs": expires_secs })
        );
    } else {
        println!(
            "Pairing code (valid for {}:{:02}):\n\n    {words}\n",
            expires_secs / 60,
            expires_secs % 60
        );
        if let Some(qr) = paircode_cli::progress::qr(&words) {
            println!("{qr}");
        }
        println!("On the other device run:  paircode network pair join --code \"<the 12 words>\"");
    }
    let progress = Progress::new(json, Some("waiting for the other device…"));
    follow(&mut client, json, progress).await
}

async fn join(
    instance: &Instance,
    json: bool,
    code: Option<String>,
    words: Vec<String>,
) -> Result<(), CliError> {
    let typed = match (code, words.is_empty()) {
        (Some(code), _) => zeroize::Zeroizing::new(code),
        (None, false) => zeroize::Zeroizing::new(words.join(" ")),
        (None, true) => read_code_from_stdin()?,
    };
    // Checked here, before anything is sent: a typo is caught while the user still looks.
    let code = Code::parse(&typed).map_err(|e| CliError::new(Exit::BadCode, e.to_string()))?;
    let mut client = Client::connect(instance).await?;
    client
        .send(&Request::Join {
            words: code.words().to_string(),
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
        .map_err(|e| CliError::new(Exit::Failure, format!("reading the code: {e}")))?;
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
                return Err(CliError::new(Exit::Cancelled, "cancelled"));
            }
        };
        let Response::Event(event) = response else {
            return Err(unexpected(response));
        };
        match event {
            Event::Searching => progress.stage(
                serde_json::json!({ "event": "searching" }),
                "searching for the device with this code…",
            ),
            Event::Found { name, peer } => {
                let text = format!("found {name} ({}), verifying…", short(&peer));
                progress.stage(
                    serde_json::json!({ "event": "found", "name": name, "peer_id": peer }),
                    &text,
                );
            }
            Event::ConfirmRequested { name, peer } => {
                progress.pause();
                let accept = ask(json, &name, &peer).await?;
                client.send(&Request::Confirm { accept }).await?;
                progress.resume("finishing…");
            }
            Event::Paired(device) => {
                progress.finish();
                let text = format!("paired with {} ({})", device.name, device.peer_id);
                print_line(
                    json,
                    serde_json::json!({ "event": "paired", "device": device }),
                    &text,
                );
                return Ok(());
            }
            Event::Failed(error) => {
                progress.finish();
                return Err(error.into());
            }
        }
    }
}

async fn ask(json: bool, name: &str, peer: &str) -> Result<bool, CliError> {
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "confirm", "name": name, "peer_id": peer })
        );
    } else {
        eprint!("Pair with {name} ({})? [y/N] ", short(peer));
    }
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| CliError::new(Exit::Failure, e.to_string()))?
    .map_err(|e| CliError::new(Exit::Failure, format!("reading the answer: {e}")))?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

fn short(peer: &str) -> String {
    let skip = peer.chars().count().saturating_sub(8);
    format!("…{}", peer.chars().skip(skip).collect::<String>())
}

fn unexpected(response: Response) -> CliError {
    CliError::new(
        Exit::Failure,
        format!("unexpected answer from the daemon: {response:?}"),
    )
}

fn print_line(json: bool, value: serde_json::Value, text: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn print_status(json: bool, status: &StatusInfo) {
    if json {
        println!("{}", serde_json::to_string(status).expect("serialisable"));
        return;
    }
    println!("instance:  {} (pid {})", status.instance, status.pid);
    println!("device:    {}", status.name);
    println!("peer id:   {}", status.peer_id);
    for addr in &status.listen {
        println!("listening: {addr}");
    }
    println!("mDNS:      {}", if status.mdns { "on" } else { "off" });
    println!("paired:    {} device(s)", status.paired_devices);
    match &status.session {
        Some(s) => println!("session:   {} — {}", s.role, s.stage),
        None => println!("session:   none"),
    }
}

fn print_devices(json: bool, devices: &[DeviceView]) {
    if json {
        println!("{}", serde_json::to_string(devices).expect("serialisable"));
        return;
    }
    if devices.is_empty() {
        println!("no paired devices");
        return;
    }
    println!(
        "{:<20} {:<54} {:<22} STATUS",
        "NAME", "PEER ID", "PAIRED AT"
    );
    for d in devices {
        let status = match (d.online, d.last_seen) {
            (true, _) => "online".to_string(),
            (false, Some(seen)) => format!("last seen {}", paircode_cli::progress::time(seen)),
            (false, None) => "never seen".to_string(),
        };
        println!(
            "{:<20} {:<54} {:<22} {status}",
            d.name,
            d.peer_id,
            paircode_cli::progress::time(d.paired_at)
        );
    }
}
