//! `paircode`: pair devices with a 12-word code.

// The C library calls `main` below directly: see there. (Unit tests keep their harness.)
#![cfg_attr(not(test), no_main)]

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use paircode_cli::args::{usage, GlobalArgs, PasswordArgs, StartArgs};
use paircode_cli::client::Client;
use paircode_cli::code_prompt;
use paircode_cli::devices::{
    device_name, host_name, load_identity, save_identity, DeviceList, IdentityRecord,
};
use paircode_cli::error::CliError;
use paircode_cli::instance::{Instance, DEVICES_FILE, IDENTITY_FILE};
use paircode_cli::interrupt::Interrupt;
use paircode_cli::ipc::{DeviceView, Event, Request, Response, StatusInfo, MAX_EXPIRES_SECS};
use paircode_cli::output;
use paircode_cli::password::{self, Confirm};
use paircode_cli::progress::{self, Progress};
use paircode_cli::relay;
use paircode_cli::start;
use paircode_cli::store::{KdfParams, Vault};
use paircode_cli::transfer::command as transfer;
use paircode_core::name::escaped;
use paircode_core::{Code, DeviceIdentity};

#[derive(Parser)]
#[command(
    name = "paircode",
    version,
    about = "Pair devices with a 12-word code",
    after_help = "Environment: PAIRCODE_PASSWORD (the store's password, instead of the prompt), \
                  PAIRCODE_DATA_DIR (like --data-dir), PAIRCODE_QR=1 (like generate --qr), \
                  RUST_LOG (the daemon's log filter).\n\
                  Exit codes: 0 success, 1 failure, 2 usage, 3 daemon not running, 4 wrong \
                  password, 5 damaged store, 6 already running, 7 bad code, 8 code expired, \
                  9 no device answered, 10 rejected or declined, 11 cancelled, 12 not \
                  initialised, 13 unknown device, 14 a pairing is already running, 15 device \
                  offline, 16 transfer refused, 17 no space on the receiver, 18 transfer not \
                  intact."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

// `defer`: a subcommand's arguments are built only when it is the one run. Building every
// argument of every command took a fifth of a millisecond of each client command.
#[derive(Subcommand)]
#[command(defer = true)]
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
    /// Send files, directories or a text to a paired device (SHA-256 verified on arrival).
    Send {
        /// The paired device, by name or peer id.
        device: String,
        /// Files and directories to send.
        #[arg(required_unless_present = "text", conflicts_with = "text")]
        paths: Vec<PathBuf>,
        /// Send this text instead of files.
        #[arg(long)]
        text: Option<String>,
    },
    /// What paired devices sent here.
    Received {
        /// Then show transfers as they arrive, with progress, until Ctrl+C.
        #[arg(long)]
        follow: bool,
    },
    /// Run a meeting point (DHT, relay, AutoNAT) for devices on other networks.
    Relay(relay::RelayArgs),
    /// Print a shell completion script (the README says where each shell looks for it).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (`paircode man | man -l -`), or write one page per command.
    Man {
        /// Write paircode.1, paircode-start.1, … into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
#[command(defer = true)]
enum NetworkCommand {
    /// Create this instance's device identity, encrypted with a password.
    Init {
        /// Start over even though the instance has a store: a new identity and no paired
        /// devices. A copy of each existing file is kept next to it.
        #[arg(long)]
        force: bool,
        /// This device's name as other devices see it [default: the host name].
        #[arg(long, value_parser = device_name)]
        name: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Change this device's name as other devices see it (the daemon must be stopped).
    Rename {
        /// The new name.
        #[arg(value_parser = device_name)]
        name: String,
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
    /// Forget a paired device and tell it so.
    Unpair {
        /// The device's name or peer id, as `network devices` lists them.
        who: String,
    },
    /// Accept transfers from a paired device, or not.
    Receive {
        /// The device's name or peer id, as `network devices` lists them.
        who: String,
        /// on: accept its transfers; off: refuse them.
        #[arg(value_enum)]
        state: Switch,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Subcommand)]
#[command(defer = true)]
enum PairCommand {
    /// Show a code for the other device to join with, and wait for it.
    Generate {
        /// Pair without asking for confirmation.
        #[arg(long)]
        auto_accept: bool,
        /// How long the code stays valid, in seconds, at most 3600 [default: 300].
        #[arg(long, value_name = "SECS",
              value_parser = clap::value_parser!(u64).range(1..=MAX_EXPIRES_SECS))]
        expires: Option<u64>,
        /// Also show the code as a QR code (only ever on a terminal).
        #[arg(long, env = "PAIRCODE_QR", value_parser = clap::builder::FalseyValueParser::new())]
        qr: bool,
    },
    /// Join the device showing this code.
    Join {
        /// The 12 words, quoted (or give them as separate arguments, or type them when asked).
        #[arg(long, value_name = "WORDS")]
        code: Option<String>,
        /// Pair with the device that proves the code without asking for confirmation.
        #[arg(long, short = 'y', alias = "auto-accept")]
        yes: bool,
        /// The 12 words as separate arguments.
        words: Vec<String>,
    },
    /// The running pairing session, if any.
    Status,
    /// Cancel the running pairing session.
    Cancel,
}

/// The program's entry point, called by the C library without Rust's start-up.
///
/// Rust's `fn main` first prepares what a long-running program may need: a guard against
/// the main thread's stack overflowing (found by reading `/proc/self/maps`), the thread's
/// name, alternate signal stacks. A client command lives for about a millisecond and
/// needs none of it, and skipping it made a minimal program start 0.1 ms sooner here
/// (0.60 ms against 0.70, 600 runs each). What the client does rely on is done here:
/// the standard descriptors are open (or a descriptor the client opens, its runtime's
/// epoll instance or its socket, could take the place of one), a write to a closed pipe
/// is an error rather than a silent death, a panic exits with 101, and standard output
/// is flushed at the end.
#[cfg_attr(not(test), export_name = "main")]
#[cfg_attr(test, allow(dead_code))]
pub extern "C" fn c_main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    open_standard_descriptors();
    // SAFETY: setting a signal's disposition to "ignore", before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = std::panic::catch_unwind(client).unwrap_or(101);
    // Rust's clean-up, as after `fn main`: standard output is flushed.
    std::process::exit(code.into())
}

/// Opens `/dev/null` on any of descriptors 0, 1 and 2 that is closed, as Rust's start-up
/// does.
fn open_standard_descriptors() {
    for fd in 0..3 {
        // SAFETY: `fcntl` only asks about the descriptor; `open` of a constant path.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != fd
            {
                // Not the descriptor we meant: nothing to write an error to either.
                libc::abort();
            }
        }
    }
}

/// The client command: its exit code.
fn client() -> u8 {
    let started = std::time::Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(e),
    };
    let json = cli.global.json;
    // Texts about the program itself: no instance, no runtime.
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man { dir } => return man(json, dir.as_deref()),
        _ => {}
    }
    let verbose = cli.global.verbose;
    paircode_cli::client::set_verbose(verbose);
    paircode_cli::client::trace(format_args!(
        "arguments parsed in {}",
        paircode_cli::client::micros(started.elapsed())
    ));
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|runtime| {
            paircode_cli::client::trace(format_args!(
                "runtime ready after {}",
                paircode_cli::client::micros(started.elapsed())
            ));
            runtime.block_on(run(cli))
        });
    if verbose {
        paircode_cli::client::trace(format_args!(
            "done in {} (from the start of main)",
            paircode_cli::client::micros(started.elapsed())
        ));
    }
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            output::error(json, &e);
            e.exit_code()
        }
    }
}

fn completions(shell: clap_complete::Shell) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "paircode", &mut script);
    output::line(String::from_utf8_lossy(&script).trim_end());
    0
}

fn man(json: bool, dir: Option<&std::path::Path>) -> u8 {
    let outcome = match dir {
        Some(dir) => clap_mangen::generate_to(Cli::command(), dir).map(|()| {
            output::result(
                json,
                serde_json::json!({ "written": dir }),
                format_args!("manual pages written to {}", dir.display()),
            )
        }),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map(|()| output::line(String::from_utf8_lossy(&page).trim_end()))
        }
    };
    match outcome {
        Ok(()) => 0,
        Err(source) => {
            let error = CliError::Input {
                what: "the manual pages",
                source,
            };
            output::error(json, &error);
            error.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let instance = Instance::resolve(cli.global.data_dir.as_deref(), &cli.global.instance)?;
    let json = cli.global.json;
    match cli.command {
        // The daemon and the meeting point are `paircode-daemon`, which links libp2p; this
        // program, which every other command starts, stays small and fast to start. It takes
        // our arguments as they are and our process (pid, terminal, standard streams).
        Command::Start(StartArgs {
            foreground: true, ..
        })
        | Command::Relay(_) => Err(start::exec_daemon()),
        Command::Start(args) => {
            let pid = start::spawn_background(&instance, args.options(cli.global.verbose))?;
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
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
        Command::Stop => {
            // Stopping what is not running has the outcome asked for: not an error.
            match Client::call(&instance, &Request::Stop).await {
                Ok(_) => {}
                Err(CliError::NotRunning { .. } | CliError::NotInitialised { .. }) => {
                    output::result(
                        json,
                        serde_json::json!({ "stopped": instance.name, "was_running": false }),
                        format_args!("'{}' was not running", instance.name),
                    );
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
            // The daemon exits once it has closed its connections; wait for its lock.
            for _ in 0..100 {
                if paircode_cli::lock::DaemonLock::holder(&instance.lock_file()).is_none() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            output::result(
                json,
                serde_json::json!({ "stopped": instance.name, "was_running": true }),
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
        Command::Send {
            device,
            paths,
            text,
        } => transfer::send(&instance, json, device, paths, text).await,
        Command::Received { follow } => transfer::received(&instance, json, follow).await,
    }
}

async fn network(instance: &Instance, json: bool, command: NetworkCommand) -> Result<(), CliError> {
    match command {
        NetworkCommand::Init {
            force,
            name,
            password,
        } => init(instance, json, force, name, password),
        NetworkCommand::Rename { name, password } => rename(instance, json, name, password),
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
                    let text = format!("unpaired {}", escaped(&device.name));
                    output::result(json, serde_json::json!({ "unpaired": device }), text);
                    Ok(())
                }
                other => Err(unexpected(other)),
            }
        }
        NetworkCommand::Receive { who, state } => {
            transfer::set_receive(instance, json, who, matches!(state, Switch::On)).await
        }
        NetworkCommand::Pair { command } => match command {
            PairCommand::Generate {
                auto_accept,
                expires,
                qr,
            } => generate(instance, json, auto_accept, expires, qr).await,
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
fn init(
    instance: &Instance,
    json: bool,
    force: bool,
    name: Option<String>,
    args: PasswordArgs,
) -> Result<(), CliError> {
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
    let name = name.unwrap_or_else(host_name);
    // The list first: once the identity exists, a missing list means a lost one.
    DeviceList::default().save(&vault)?;
    save_identity(
        &vault,
        &IdentityRecord::new(&identity, paircode_cli::daemon::unix_now(), name.clone()),
    )?;
    let peer = identity.peer_id().to_string();
    let mut text = String::new();
    for copy in &backups {
        text.push_str(&format!(
            "kept a copy of the old store: {}\n",
            copy.display()
        ));
    }
    text.push_str(&format!(
        "initialised '{}': this device is called {name:?} (`{}` changes it)\n\
         next: `{}`, then pair with `{}`",
        instance.name,
        command_line(instance, "network rename NAME"),
        command_line(instance, "start"),
        command_line(instance, "network pair generate"),
    ));
    output::result(
        json,
        serde_json::json!({
            "instance": instance.name,
            "name": name,
            "peer_id": peer,
            "backups": backups,
        }),
        text,
    );
    Ok(())
}

/// Renames the device in its store; the daemon reads the name when it starts, so it must
/// not be running (it would keep announcing the old name).
fn rename(
    instance: &Instance,
    json: bool,
    name: String,
    args: PasswordArgs,
) -> Result<(), CliError> {
    if !instance.is_initialised() {
        return Err(start::not_initialised(instance));
    }
    if let Some(pid) = paircode_cli::lock::DaemonLock::holder(&instance.lock_file()) {
        return Err(paircode_cli::lock::LockError::AlreadyRunning {
            pid: pid.to_string(),
        }
        .into());
    }
    let password = password::obtain(args.password_stdin, args.password, Confirm::Once)?;
    let vault = Vault::open(&instance.dir, IDENTITY_FILE, password.as_bytes())?;
    drop(password);
    let mut record = load_identity(&vault)?.ok_or_else(|| start::not_initialised(instance))?;
    let old = record.name.replace(name.clone());
    save_identity(&vault, &record)?;
    let text = match &old {
        Some(old) => format!("renamed {old:?} to {name:?}"),
        None => format!("this device is now called {name:?}"),
    };
    output::result(
        json,
        serde_json::json!({ "instance": instance.name, "name": name, "was": old }),
        text,
    );
    Ok(())
}

fn command_line(instance: &Instance, args: &str) -> String {
    paircode_cli::instance::command_line(&instance.name, args)
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
    qr: bool,
) -> Result<(), CliError> {
    let mut client = Client::connect(instance).await?;
    let interrupt = Interrupt::listen();
    client
        .send(&Request::Generate {
            auto_accept,
            expires_secs: expires,
        })
        .await?;
    // The daemon starts the code's clock before it answers: count from the asking.
    let asked = std::time::Instant::now();
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
        show_code(&words, expires_secs, qr);
    }
    // What the daemon says, bounded as the daemon bounds what it is asked.
    let expires_secs = expires_secs.min(MAX_EXPIRES_SECS);
    let deadline = asked + std::time::Duration::from_secs(expires_secs);
    let progress = Progress::until(json, "waiting for the other device…", deadline);
    follow(&mut client, interrupt, json, Side::Generating, progress).await
}

/// Fits an 80×24 terminal: the words in two rows to read out, the command to copy, and a
/// QR code only when asked for (it takes 30 lines) and only where it can be scanned.
fn show_code(words: &str, expires_secs: u64, qr: bool) {
    let list: Vec<&str> = words.split(' ').collect();
    let (first, second) = list.split_at(list.len().div_ceil(2));
    output::line(format_args!(
        "Pairing code (valid for {}):\n\n    {}\n    {}\n",
        progress::minutes(std::time::Duration::from_secs(expires_secs)),
        first.join(" "),
        second.join(" "),
    ));
    if qr && std::io::stdout().is_terminal() {
        if let Some(qr) = progress::qr(words) {
            output::line(qr);
        }
    }
    output::line(format_args!(
        "On the other device run:\n\n{}",
        join_command(words)
    ));
}

/// The join command with the code, indented, in lines that fit an 80-column terminal: a
/// terminal would otherwise break the line in the middle of a word. Pasted into a shell
/// the lines are one command (a continued line, then a quoted code that spans two
/// lines); the code reads any whitespace between words.
fn join_command(words: &str) -> String {
    const COMMAND: &str = "paircode network pair join --code";
    let one_line = format!("    {COMMAND} \"{words}\"\n");
    if one_line.chars().count() <= 80 {
        return one_line;
    }
    let list: Vec<&str> = words.split(' ').collect();
    let (first, second) = list.split_at(list.len().div_ceil(2));
    format!(
        "    {COMMAND} \\\n      \"{}\n      {}\"\n",
        first.join(" "),
        second.join(" ")
    )
}

async fn join(
    instance: &Instance,
    json: bool,
    code: Option<String>,
    auto_accept: bool,
    words: Vec<String>,
) -> Result<(), CliError> {
    // Checked here, before anything is sent: a typo is caught while the user still looks.
    // The words given as arguments are wiped here; clap's own copies of the command line
    // are not (and the command line is visible in `ps`: the prompt is the private way).
    let (code, words) = (
        code.map(zeroize::Zeroizing::new),
        zeroize::Zeroizing::new(words),
    );
    let code = match (code, words.is_empty()) {
        (Some(code), _) => Code::parse(&code)?,
        (None, false) => Code::parse(&zeroize::Zeroizing::new(words.join(" ")))?,
        (None, true) => read_code()?,
    };
    let mut client = Client::connect(instance).await?;
    let interrupt = Interrupt::listen();
    client
        .send(&Request::Join {
            words: code.words(),
            auto_accept,
        })
        .await?;
    let progress = Progress::new(json, None);
    let result = follow(&mut client, interrupt, json, Side::Joining, progress).await;
    if let Err(e) = &result {
        if !json && e.kind() == "no_device_answered" {
            paircode_cli::meeting_points::explain_no_device(instance).await;
        }
    }
    result
}

/// The code from standard input. At a terminal the code is typed at a prompt with Tab
/// completion, and asked for again after a mistake; elsewhere the first line is the code.
fn read_code() -> Result<Code, CliError> {
    let input_error = |source| CliError::Input {
        what: "the code",
        source,
    };
    if !std::io::stdin().is_terminal() {
        // Sized for any code line, so that reading it never reallocates (which would free an
        // unwiped copy).
        let mut line = zeroize::Zeroizing::new(String::with_capacity(1024));
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(input_error)?;
        return Ok(Code::parse(&line)?);
    }
    loop {
        let line = match code_prompt::read("Code: ").map_err(input_error)? {
            code_prompt::Typed::Line(line) => line,
            code_prompt::Typed::Interrupted => return Err(CliError::Interrupted),
            // Ctrl+D gives up: an empty code is the error to report.
            code_prompt::Typed::End => zeroize::Zeroizing::new(String::new()),
        };
        match Code::parse(&line) {
            Ok(code) => return Ok(code),
            Err(e) if !line.trim().is_empty() => {
                eprintln!("{e}\ntype the code again (Tab completes a word), or Ctrl+D to give up")
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Which end of the pairing this command is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Generating,
    Joining,
}

/// Shows a session's progress until its outcome. Ctrl+C, at any point including the y/N
/// question, drops the connection, which cancels the session in the daemon; an outcome
/// that arrives while the question is open (the confirmation window closed, the other
/// device gave up) closes the question.
async fn follow(
    client: &mut Client,
    mut interrupt: Interrupt,
    json: bool,
    side: Side,
    mut progress: Progress,
) -> Result<(), CliError> {
    // `interrupt` was made before the request went out (see `interrupt.rs`).
    // Answers are read on a thread of their own: a read cannot be cancelled, and this one
    // must not keep the process alive once the session is over.
    let (answer_tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut asking = false;
    // The other device's name, once known, for the waiting line after our answer.
    let mut other: Option<String> = None;
    loop {
        let response = tokio::select! {
            r = client.receive() => r?,
            line = answers.recv(), if asking => {
                asking = false;
                let line = line
                    .unwrap_or_else(|| Ok(String::new()))
                    .map_err(|source| CliError::Input { what: "the answer", source })?;
                let accept = matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
                client.send(&Request::Confirm { accept }).await?;
                // The joiner answers first; the question then goes to the other screen.
                match (side, accept, &other) {
                    (Side::Joining, true, Some(name)) => {
                        progress.resume(&format!("waiting for {} to accept…", escaped(name)))
                    }
                    _ => progress.resume("finishing…"),
                }
                continue;
            }
            _ = interrupt.recv() => {
                end_question(json, asking);
                progress.finish();
                return Err(CliError::Interrupted);
            }
        };
        end_question(json, std::mem::take(&mut asking));
        let Response::Event(event) = response else {
            return Err(unexpected(response));
        };
        match event {
            Event::Searching => {
                // The daemon runs the core's default session settings.
                let patience = paircode_core::Config::default().join_timeout;
                progress.stage_until(
                    "searching",
                    serde_json::json!({}),
                    "searching for the device with this code…",
                    std::time::Instant::now() + patience,
                )
            }
            Event::Found { name, peer } => {
                other = Some(name.clone());
                // The joiner's user has nothing to do: the question is on the other screen.
                let shown = escaped(&name);
                let text = match side {
                    Side::Generating => format!("found {shown} ({}), verifying…", short(&peer)),
                    Side::Joining => {
                        format!(
                            "found {shown} ({}); waiting for {shown} to accept…",
                            short(&peer)
                        )
                    }
                };
                progress.stage(
                    "found",
                    serde_json::json!({ "name": name, "peer_id": peer }),
                    &text,
                );
            }
            Event::NotAnnounced { reason } => progress.stage(
                "not-announced",
                serde_json::json!({ "reason": reason }),
                &format!(
                    "could not announce the code in the DHT: {reason}; devices on this \
                     network can still join, others may not find it (still trying)…"
                ),
            ),
            Event::ConfirmRequested {
                name,
                peer,
                verification,
            } => {
                progress.pause();
                ask(json, &name, &peer, &verification);
                other = Some(name);
                let answer_tx = answer_tx.clone();
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let read = std::io::stdin().lock().read_line(&mut line).map(|_| line);
                    let _ = answer_tx.send(read);
                });
                asking = true;
            }
            Event::Paired(device) => {
                progress.finish();
                let text = format!("paired with {}", escaped(&device.name));
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
fn ask(json: bool, name: &str, peer: &str, verification: &str) {
    if json {
        output::event(
            "confirm",
            serde_json::json!({ "name": name, "peer_id": peer, "verification": verification }),
        );
    } else {
        eprint!(
            "Pair with {} ({})?\n  Verification: {verification}\n  \
             Check that the other screen shows the same words. [y/N] ",
            escaped(name),
            short(peer)
        );
    }
}

/// Ends the line of a question left unanswered, so what follows starts on its own.
fn end_question(json: bool, asking: bool) {
    if asking && !json {
        eprintln!();
    }
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
    output::line(format_args!("device:    {}", escaped(&status.name)));
    output::line(format_args!("peer id:   {}", status.peer_id));
    // Addresses another machine can reach first; loopback only helps this one.
    let loopback = |addr: &&String| addr.starts_with("/ip4/127.") || addr.starts_with("/ip6/::1/");
    let (local, reachable): (Vec<&String>, Vec<&String>) = status.listen.iter().partition(loopback);
    for addr in reachable.iter().chain(&local) {
        output::line(format_args!("listening: {addr}"));
    }
    if let Some(addr) = reachable.first().or(local.first()) {
        output::line(format_args!("reach it:  paircode start --bootstrap {addr}"));
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
    paircode_cli::meeting_points::print(&status.meeting_points);
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
            (true, _) => match d.connection {
                Some(path) => format!("online ({})", path.as_str()),
                None => "online".to_string(),
            },
            (false, Some(seen)) => format!("last seen {}", paircode_cli::progress::time(seen)),
            (false, None) => "never seen".to_string(),
        };
        let status = match d.receive {
            true => status,
            false => format!("{status}, receiving off"),
        };
        output::line(format_args!(
            "{:<20} {:<54} {:<22} {status}",
            escaped(&d.name),
            d.peer_id,
            paircode_cli::progress::time(d.paired_at)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest words make the longest code; every line must still fit 80 columns, and
    /// what a shell makes of the lines must parse as the same code.
    #[test]
    fn the_join_command_fits_80_columns_and_pastes_as_the_code() {
        for words in [
            "abandon ability able about above absent absorb abstract absurd abuse access \
             accident",
            "strategy strategy strategy strategy strategy strategy strategy strategy \
             strategy strategy strategy strategy",
            "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
        ] {
            let text = join_command(words);
            for line in text.lines() {
                assert!(line.chars().count() <= 80, "{line:?} is too long");
            }
            // What the shell passes as the argument: the text between the quotes.
            let quoted = text.split('"').nth(1).expect("a quoted code");
            assert_eq!(
                quoted.split_whitespace().collect::<Vec<_>>(),
                words.split(' ').collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--help`, the man page and the completions are only as good as the texts.
    #[test]
    fn every_argument_and_command_has_help() {
        fn check(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                assert!(
                    builtin || arg.get_help().is_some(),
                    "{path} {} has no help text",
                    arg.get_id()
                );
            }
            for sub in cmd.get_subcommands() {
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no help text",
                    sub.get_name()
                );
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&Cli::command(), "paircode");
    }
}
