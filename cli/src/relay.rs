//! `paircode relay`: run a meeting point in the foreground. Its identity lives in the
//! instance directory (`relay.key`, 0600, unencrypted: a server restarts unattended), so
//! its addresses stay the same across restarts. It prints each full address (with
//! `/p2p/<peer id>`) on its own line on stdout, logs to stderr, and stops on Ctrl-C or
//! SIGTERM.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use paircode_tokio::meeting_point::key_file::{self, KeyFileError};
use paircode_tokio::meeting_point::{
    Keypair, MeetingPointConfig, MeetingPointError, RelayLimits, StoreLimits, KEY_FILE,
};
use paircode_tokio::Multiaddr;
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
pub struct RelayArgs {
    /// Address to listen on (repeatable), e.g. /ip4/0.0.0.0/tcp/4001.
    #[arg(long, value_name = "MULTIADDR", required = true)]
    listen: Vec<Multiaddr>,
    /// Where devices reach this server, if not where it listens (repeatable): its public
    /// address behind port forwarding or a cloud 1:1 NAT, e.g. /ip4/203.0.113.7/tcp/4001.
    #[arg(long, value_name = "MULTIADDR")]
    external: Vec<Multiaddr>,
    /// Relay reservations held at once, from all devices [default: 1024].
    #[arg(long, value_name = "N")]
    max_reservations: Option<usize>,
    /// Relay reservations one device may hold at once [default: 4].
    #[arg(long, value_name = "N")]
    max_reservations_per_peer: Option<usize>,
    /// How long a reservation lasts before the device must renew it [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = at_most_a_week)]
    reservation_duration: Option<humantime::Duration>,
    /// Relayed connections open at once [default: 256].
    #[arg(long, value_name = "N")]
    max_circuits: Option<usize>,
    /// Relayed connections one device may have open at once [default: 16].
    #[arg(long, value_name = "N")]
    max_circuits_per_peer: Option<usize>,
    /// How long one relayed connection may last [default: 10m].
    #[arg(long, value_name = "DURATION", value_parser = at_most_a_week)]
    max_circuit_duration: Option<humantime::Duration>,
    /// Bytes one relayed connection may carry [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    max_circuit_bytes: Option<u64>,
    /// DHT provider records one device may have stored here [default: 64].
    #[arg(long, value_name = "N")]
    max_records_per_peer: Option<usize>,
    /// How long a provider record is kept at most [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = at_most_a_week)]
    record_ttl: Option<humantime::Duration>,
    /// AutoNAT also dials back private addresses (test beds, LAN-only meeting points).
    #[arg(long)]
    autonat_private_ips: bool,
}

/// The longest duration the meeting point takes. libp2p adds these to `Instant::now()`,
/// which panics past the clock's range ("500000000y" parses); a week is already far
/// beyond any useful reservation, circuit or record lifetime.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// A humantime duration of at most [`LONGEST`] (a usage error, exit 2, otherwise).
fn at_most_a_week(value: &str) -> Result<humantime::Duration, String> {
    let duration: humantime::Duration = value.parse().map_err(|e| format!("{e}"))?;
    match *duration <= LONGEST {
        true => Ok(duration),
        false => Err(format!("{value} is longer than the longest allowed, 7days")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay key: {0}")]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    MeetingPoint(#[from] MeetingPointError),
    #[error("setting up logging: {0}")]
    Logging(String),
    #[error("waiting for a signal: {0}")]
    Signal(std::io::Error),
}

impl RelayArgs {
    fn config(self, keypair: Keypair) -> MeetingPointConfig {
        let mut config = MeetingPointConfig::new(keypair, self.listen);
        config.external = self.external;
        let relay = RelayLimits::default();
        config.relay = RelayLimits {
            max_reservations: self.max_reservations.unwrap_or(relay.max_reservations),
            max_reservations_per_peer: self
                .max_reservations_per_peer
                .unwrap_or(relay.max_reservations_per_peer),
            reservation_duration: self
                .reservation_duration
                .map_or(relay.reservation_duration, Into::into),
            max_circuits: self.max_circuits.unwrap_or(relay.max_circuits),
            max_circuits_per_peer: self
                .max_circuits_per_peer
                .unwrap_or(relay.max_circuits_per_peer),
            max_circuit_duration: self
                .max_circuit_duration
                .map_or(relay.max_circuit_duration, Into::into),
            max_circuit_bytes: self.max_circuit_bytes.unwrap_or(relay.max_circuit_bytes),
        };
        config.store = StoreLimits {
            per_peer: self
                .max_records_per_peer
                .unwrap_or(StoreLimits::default().per_peer),
            ..StoreLimits::default()
        };
        if let Some(ttl) = self.record_ttl {
            config.provider_record_ttl = Duration::from(ttl);
        }
        config.autonat_only_global_ips = !self.autonat_private_ips;
        config
    }
}

/// Runs the meeting point with its key in `dir` until Ctrl-C or SIGTERM.
pub async fn run(dir: &Path, args: RelayArgs, verbose: bool) -> Result<(), RelayError> {
    let default = if verbose { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| RelayError::Logging(e.to_string()))?;

    // Before the addresses go out: whoever reads them may stop the server right away.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(RelayError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RelayError::Signal)?;
    let keypair = key_file::load_or_create(&dir.join(KEY_FILE))?;
    let relay = paircode_tokio::start_meeting_point(args.config(keypair)).await?;
    tracing::info!(peer = %relay.peer_id(), "meeting point running");
    let mut stdout = std::io::stdout().lock();
    for addr in relay.addrs() {
        // A closed stdout (the service manager discarding it) must not stop the server.
        let _ = writeln!(stdout, "{addr}");
    }
    let _ = stdout.flush();
    drop(stdout);

    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    relay.shutdown().await;
    Ok(())
}
