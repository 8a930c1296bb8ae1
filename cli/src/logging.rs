//! The daemon's log: a 0600 file in the instance directory (and stderr in the foreground).
//! Nothing secret is ever logged: no password, no code words, no keys.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;

use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::EnvFilter;

use crate::error::CliError;
use crate::instance::Instance;

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
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| CliError::Log {
            path: path.clone(),
            source,
        })?;
    let default = match (verbose, has_bootstrap) {
        (true, _) => "debug".to_string(),
        (false, true) => "info".to_string(),
        (false, false) => format!("info,{QUIET_DHT}"),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let result = match to_stderr {
        true => builder
            .with_writer(std::sync::Mutex::new(file).and(std::io::stderr))
            .try_init(),
        false => builder.with_writer(std::sync::Mutex::new(file)).try_init(),
    };
    result.map_err(|e| CliError::Logging(e.to_string()))
}
