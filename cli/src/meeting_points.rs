//! Meeting points of a device (`paircode start --relay`): where the list comes from, and
//! how the daemon reports them and each device's path.
//!
//! The list comes from exactly one place, the first that is set: the `--relay` flags, then
//! `PAIRCODE_RELAY` (comma-separated), then the `relays` file in the instance directory
//! (one address a line; blank lines and `#` comments ignored). A flag overrides the
//! environment, which overrides the file, as with most tools: the most specific wins.

use std::path::Path;

use paircode_net::{ConnectionPath, MeetingPointState, Multiaddr, Node};
use serde::{Deserialize, Serialize};

use crate::devices::DeviceRecord;
use crate::error::{CliError, UsageError};
use crate::instance::Instance;
use crate::ipc::DeviceView;

/// The environment variable read when no `--relay` is given.
pub const ENV_VAR: &str = "PAIRCODE_RELAY";
/// The file in the instance directory read when neither flags nor the variable are set.
pub const RELAYS_FILE: &str = "relays";

/// Where the meeting points came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    None,
}

/// The meeting points to use: `flags`, else `env` (the value of [`ENV_VAR`]), else the
/// instance's [`RELAYS_FILE`].
pub fn resolve(
    flags: &[Multiaddr],
    env: Option<String>,
    instance: &Instance,
) -> Result<(Vec<Multiaddr>, Source), CliError> {
    if !flags.is_empty() {
        return Ok((flags.to_vec(), Source::Flag));
    }
    if let Some(env) = env.filter(|v| !v.trim().is_empty()) {
        let values = env.split(',').map(str::trim).filter(|v| !v.is_empty());
        return Ok((parse(values)?, Source::Env));
    }
    let path = instance.dir.join(RELAYS_FILE);
    match read_file(&path)? {
        Some(text) => {
            let lines = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty());
            let addrs = parse(lines)?;
            let source = match addrs.is_empty() {
                true => Source::None,
                false => Source::File,
            };
            Ok((addrs, source))
        }
        None => Ok((Vec::new(), Source::None)),
    }
}

fn read_file(path: &Path) -> Result<Option<String>, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(UsageError::RelaysFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
        .into()),
    }
}

/// Checked as `--relay` is, by [`crate::addr::relay`].
fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Result<Vec<Multiaddr>, CliError> {
    Ok(values.map(crate::addr::relay).collect::<Result<_, _>>()?)
}

/// One meeting point in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingPointView {
    pub addr: String,
    /// `connecting`, `reserving`, `reserved` or `unreachable`.
    pub state: String,
    /// Whether a relay reservation is active: peers elsewhere can reach us through it.
    pub reservation: bool,
    /// Our address through it, while reserved.
    pub circuit: Option<String>,
    /// What went wrong, while unreachable (with what to check).
    pub error: Option<String>,
}

/// How a device is connected, in `network devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    Direct,
    Relayed,
}

impl From<ConnectionPath> for Connection {
    fn from(path: ConnectionPath) -> Self {
        match path {
            ConnectionPath::Direct => Connection::Direct,
            ConnectionPath::Relayed => Connection::Relayed,
        }
    }
}

/// The node's meeting points as `status` shows them.
pub async fn views(node: &Node) -> Vec<MeetingPointView> {
    let Ok(reach) = node.reach().await else {
        return Vec::new();
    };
    reach
        .meeting_points
        .into_iter()
        .map(|mp| {
            let addr = mp.addr.to_string();
            match mp.state {
                MeetingPointState::Connecting => view(addr, "connecting", None, None),
                MeetingPointState::Reserving => view(addr, "reserving", None, None),
                MeetingPointState::Reserved { circuit } => {
                    view(addr, "reserved", Some(circuit.to_string()), None)
                }
                MeetingPointState::Unreachable { error, retry_in } => {
                    let retrying = match retry_in.is_zero() {
                        true => "retrying now".to_owned(),
                        false => format!("retrying in {} s", retry_in.as_secs_f64().ceil()),
                    };
                    let error = format!(
                        "{error}; {retrying}. Check that the meeting point runs \
                         (`paircode relay`), that its address and peer id are right, and \
                         that this network lets TCP out to it"
                    );
                    view(addr, "unreachable", None, Some(error))
                }
            }
        })
        .collect()
}

fn view(
    addr: String,
    state: &str,
    circuit: Option<String>,
    error: Option<String>,
) -> MeetingPointView {
    MeetingPointView {
        addr,
        state: state.to_owned(),
        reservation: circuit.is_some(),
        circuit,
        error,
    }
}

/// Lets each paired device and this one find each other again across networks, through
/// the meeting points (a no-op without any).
pub fn set_rendezvous<'a>(node: &Node, devices: impl Iterator<Item = &'a DeviceRecord>) {
    let me = node.peer_id();
    for device in devices {
        if let Some((peer, secret)) = device.rendezvous_secret(&me) {
            let _ = node.set_rendezvous(peer, secret);
        }
    }
}

/// `devices` with each online device's path filled in.
pub async fn with_paths(node: &Node, mut devices: Vec<DeviceView>) -> Vec<DeviceView> {
    // Only online devices have a path: without one, `network devices` needs no word from
    // the node's event loop.
    if !devices.iter().any(|d| d.online) {
        return devices;
    }
    let Ok(reach) = node.reach().await else {
        return devices;
    };
    for device in &mut devices {
        device.connection = match device.online {
            true => reach
                .connections
                .iter()
                .find(|(peer, _)| peer.to_string() == device.peer_id)
                .map(|(_, path)| Connection::from(*path)),
            false => None,
        };
    }
    devices
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Direct => "direct",
            Connection::Relayed => "relayed",
        }
    }
}

/// The meeting points in `status`'s human view.
pub fn print(meeting_points: &[MeetingPointView]) {
    if meeting_points.is_empty() {
        crate::output::line("meeting:   none (LAN only)");
    }
    for mp in meeting_points {
        let state = match (&mp.circuit, &mp.error) {
            (Some(circuit), _) => format!("reservation active, reachable at {circuit}"),
            (None, Some(error)) => format!("unreachable: {error}"),
            (None, None) => format!("{} (no reservation yet)", mp.state),
        };
        crate::output::line(format_args!("meeting:   {} — {state}", mp.addr));
    }
}

/// After a join found no device: says what the meeting points have to do with it, on
/// stderr (the error itself is printed as usual). Nothing with `--json`: the envelope's
/// `kind` is the machine-readable answer there.
pub async fn explain_no_device(instance: &Instance) {
    use crate::ipc::{Request, Response};
    let Ok(Response::Status(status)) =
        crate::client::Client::call(instance, &Request::Status).await
    else {
        return;
    };
    let hint = match status.meeting_points.as_slice() {
        [] => "only devices on this network were searched: to pair across networks, start \
               the daemon with --relay (see `paircode relay`)"
            .to_owned(),
        mps if mps.iter().all(|mp| mp.error.is_some()) => format!(
            "no meeting point is reachable, so only this network was searched: {}",
            mps[0].error.as_deref().unwrap_or_default()
        ),
        _ => return,
    };
    eprintln!("hint: {hint}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWGYLbpTKKubHUBuq6a3CFFCDtr4Yk7aqCw3Q57qgSteLD";
    const B: &str =
        "/ip4/198.51.100.2/tcp/4001/p2p/12D3KooWD43aPS8FNNu7DdoAH9u7p5X6rczGanqbcSx5Gpitbxva";

    fn instance(file: Option<&str>) -> (tempfile::TempDir, Instance) {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance::resolve(Some(dir.path()), "test").unwrap();
        std::fs::create_dir_all(&instance.dir).unwrap();
        if let Some(text) = file {
            std::fs::write(instance.dir.join(RELAYS_FILE), text).unwrap();
        }
        (dir, instance)
    }

    fn strings(addrs: &[Multiaddr]) -> Vec<String> {
        addrs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let (_dir, instance) = instance(Some(&format!("# home server\n{A}\n\n")));
        let flags = [B.parse().unwrap()];
        let (addrs, source) = resolve(&flags, Some(A.to_owned()), &instance).unwrap();
        assert_eq!(
            (strings(&addrs), source),
            (vec![B.to_owned()], Source::Flag)
        );
        let env = format!("{B}, {A}");
        let (addrs, source) = resolve(&[], Some(env), &instance).unwrap();
        assert_eq!(
            (strings(&addrs), source),
            (vec![B.to_owned(), A.to_owned()], Source::Env)
        );
        let (addrs, source) = resolve(&[], Some(" ".to_owned()), &instance).unwrap();
        assert_eq!(
            (strings(&addrs), source),
            (vec![A.to_owned()], Source::File)
        );
    }

    #[test]
    fn nothing_configured_is_no_meeting_point() {
        let (_dir, instance) = instance(None);
        let (addrs, source) = resolve(&[], None, &instance).unwrap();
        assert!(addrs.is_empty());
        assert_eq!(source, Source::None);
    }

    #[test]
    fn an_address_without_its_peer_id_is_refused() {
        let (_dir, instance) = instance(None);
        let unnamed = "/ip4/198.51.100.1/tcp/4001";
        let err = crate::addr::relay(unnamed).unwrap_err();
        assert!(err.to_string().contains("/p2p/<peer id>"), "{err}");
        let err = resolve(&[], Some(unnamed.to_owned()), &instance).unwrap_err();
        assert!(err.to_string().contains("/p2p/<peer id>"), "{err}");
    }
}
