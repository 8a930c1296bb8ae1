//! The daemon's log: a 0600 file in the instance directory (and stderr in the foreground),
//! capped in size (`log_file`) and rate-limited per callsite (`log_limit`), because remote
//! peers can cause log lines. Nothing secret is ever logged: no password, no code words,
//! no keys.

use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::error::CliError;
use crate::instance::Instance;
use crate::log_file::LogFile;
use crate::log_limit::RateLimit;

/// Kademlia warns at start that it has "no known peers" when given no bootstrap address,
/// which is the normal state of an mDNS-only daemon: the warning is kept for `--verbose`.
const QUIET_DHT: &str = "libp2p_kad=error";

pub fn init(
    instance: &Instance,
    verbose: bool,
    has_bootstrap: bool,
    to_stderr: bool,
) -> Result<(), CliError> {
    let path = instance.log_file();
    let file = LogFile::open(&path).map_err(|source| CliError::Log {
        path: path.clone(),
        source,
    })?;
    let default = match (verbose, has_bootstrap) {
        (true, _) => "debug".to_string(),
        (false, true) => "info".to_string(),
        (false, false) => format!("info,{QUIET_DHT}"),
    };
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let limit = RateLimit::default();
    let filter = env.and(limit.clone());
    let layer = tracing_subscriber::fmt::layer().with_ansi(false);
    let result = match to_stderr {
        true => tracing_subscriber::registry()
            .with(
                layer
                    .with_writer(std::sync::Mutex::new(file).and(std::io::stderr))
                    .with_filter(filter),
            )
            .try_init(),
        false => tracing_subscriber::registry()
            .with(
                layer
                    .with_writer(std::sync::Mutex::new(file))
                    .with_filter(filter),
            )
            .try_init(),
    };
    result.map_err(|e| CliError::Logging(e.to_string()))?;
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(limit.report_every_window());
    }
    Ok(())
}
