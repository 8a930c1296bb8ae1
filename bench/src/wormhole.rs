//! The shell scripts that run Magic Wormhole against its own mailbox server, in a network
//! namespace of their own.

use std::path::Path;
use std::process::{Command, Output};

/// The start of a wormhole script run inside `unshare -n` (a network namespace of its own,
/// so no packet can leave the machine): `cd work`, loopback up, a veth pair with 10.79.0.1
/// (the Rust CLI offers no loopback address as a direct-connection hint), and a mailbox
/// server (`twist wormhole-mailbox`) on 127.0.0.1:4000 that the script stops when it ends.
pub fn mailbox_prelude(twist: &Path, work: &Path) -> String {
    format!(
        r#"set -eu
cd {work}
ip link set lo up
ip link add wh0 type veth peer name wh1
ip addr add 10.79.0.1/24 dev wh0
ip link set wh0 up
ip link set wh1 up
"{twist}" wormhole-mailbox --port tcp:4000:interface=127.0.0.1 >server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for i in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/4000) 2>/dev/null && break
  sleep 0.1
done
"#,
        work = work.display(),
        twist = twist.display(),
    )
}

/// Runs `script` under `bash` inside `unshare -n`, to its end.
pub fn run_unshared(script: &str) -> std::io::Result<Output> {
    Command::new("unshare")
        .args(["-n", "bash", "-c", script])
        .output()
}

/// The script's timings: its `sample MICROSECONDS` lines, in microseconds.
pub fn samples_us(stdout: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("sample "))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .collect()
}
