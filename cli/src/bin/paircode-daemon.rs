//! `paircode-daemon`: the daemon (`start`) and the meeting point (`relay`), the two parts of
//! paircode that run libp2p. `paircode start` and `paircode relay` run this program with
//! their own arguments, which mean the same here (`crate::args`); it always runs in the
//! foreground (`paircode start` detaches it). Every other command is `paircode` alone, a
//! program without libp2p that starts in a fraction of the time.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paircode_cli::args::{usage, GlobalArgs, StartArgs};
use paircode_cli::error::CliError;
use paircode_cli::instance::Instance;
use paircode_cli::{output, relay, start};

#[derive(Parser)]
#[command(
    name = "paircode-daemon",
    version,
    about = "paircode's daemon and meeting point, as `paircode start` and `paircode relay` run them"
)]
struct DaemonCli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: DaemonCommand,
}

#[derive(Subcommand)]
enum DaemonCommand {
    /// Run this instance's daemon in the foreground.
    Start(StartArgs),
    /// Run a meeting point (DHT, relay, AutoNAT) for devices on other networks.
    Relay(relay::RelayArgs),
}

fn main() -> ExitCode {
    let cli = match DaemonCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage(e)),
    };
    let json = cli.global.json;
    let outcome = tokio::runtime::Builder::new_current_thread()
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

async fn run(cli: DaemonCli) -> Result<(), CliError> {
    let instance = Instance::resolve(cli.global.data_dir.as_deref(), &cli.global.instance)?;
    let (json, verbose) = (cli.global.json, cli.global.verbose);
    match cli.command {
        DaemonCommand::Start(args) => {
            let detached = args.detached;
            start::run_foreground(&instance, args.options(verbose), detached, json).await
        }
        DaemonCommand::Relay(args) => Ok(relay::run(&instance.dir, args, verbose).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        DaemonCli::command().debug_assert();
    }
}
