//! The command-line arguments both programs read: `paircode` (the client, which parses
//! every command) and `paircode-daemon` (which `paircode` runs for `start` and `relay`,
//! passing its own arguments on unchanged). Defined once here so that the two cannot
//! disagree about what an argument means.

use std::path::PathBuf;

use clap::Args;
use paircode_net::Multiaddr;

use crate::addr;
use crate::devices::device_name;
use crate::error::{CliError, UsageError};
use crate::output;
use crate::start::StartOptions;

/// The options every command takes, before or after the command's name.
#[derive(Args)]
pub struct GlobalArgs {
    /// Which daemon to talk to; several can run on one machine.
    #[arg(long, global = true, default_value = "default", value_name = "NAME")]
    pub instance: String,
    /// Where instances keep their files [default: the platform's data directory,
    /// ~/.local/share/paircode on Linux].
    #[arg(long, global = true, env = "PAIRCODE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable output: one JSON envelope per line (`{"schema":"paircode/1",…}`),
    /// errors included.
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail: in the daemon's log (RUST_LOG overrides), and on stderr each step of a
    /// command's exchange with its daemon (socket, request, reply, timings).
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

/// How a command that unlocks the store gets the password.
#[derive(Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The password itself (visible to other users in `ps`: prefer the prompt,
    /// --password-stdin or the environment).
    #[arg(
        long,
        value_name = "VALUE",
        env = "PAIRCODE_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

/// `start`'s arguments.
#[derive(Args)]
pub struct StartArgs {
    /// Stay attached to this terminal.
    #[arg(long)]
    pub foreground: bool,
    /// Set by `start` for the daemon it detaches.
    #[arg(long, hide = true)]
    pub detached: bool,
    /// Address to listen on (repeatable): /ip4/ADDRESS/tcp/PORT, port 0 for any
    /// [default: /ip4/0.0.0.0/tcp/0].
    #[arg(long, value_name = "MULTIADDR", value_parser = addr::listen)]
    pub listen: Vec<Multiaddr>,
    /// DHT entry point (repeatable): /ip4/ADDRESS/tcp/PORT/p2p/PEER-ID, as the other
    /// device's `paircode status` prints it.
    #[arg(long, value_name = "MULTIADDR", value_parser = addr::bootstrap)]
    pub bootstrap: Vec<Multiaddr>,
    /// Meeting point (repeatable), as `paircode relay` prints it:
    /// /ip4/ADDRESS/tcp/PORT/p2p/PEER-ID. Default: $PAIRCODE_RELAY (comma-separated), else
    /// the instance's `relays` file.
    #[arg(long, value_name = "MULTIADDR", value_parser = addr::relay)]
    pub relay: Vec<Multiaddr>,
    /// No LAN discovery (for loopback-only setups).
    #[arg(long)]
    pub no_mdns: bool,
    /// Where received files go [default: the platform's download directory, `paircode`
    /// folder].
    #[arg(long, value_name = "DIR")]
    pub downloads: Option<PathBuf>,
    /// Rename this device (as `network rename` does) before starting [default: the name
    /// chosen at `network init`].
    #[arg(long, value_parser = device_name)]
    pub name: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

impl StartArgs {
    /// What starting a daemon needs to know; `verbose` is the global option.
    pub fn options(self, verbose: bool) -> StartOptions {
        StartOptions {
            listen: self.listen,
            bootstrap: self.bootstrap,
            relay: self.relay,
            no_mdns: self.no_mdns,
            name: self.name,
            password_stdin: self.password.password_stdin,
            password: self.password.password,
            verbose,
            downloads: self.downloads,
        }
    }
}

/// clap's verdict on the arguments: help and version as clap prints them, errors as the
/// JSON envelope when `--json` was given.
pub fn usage(e: clap::Error) -> u8 {
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
    error.exit_code()
}
