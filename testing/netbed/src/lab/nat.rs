//! Homes behind NATs: an "internet" segment and home LANs joined to it by NAT routers,
//! built the way home routers are (nftables masquerade, a stateful forward filter, and no
//! answer to unsolicited traffic on the WAN side).
//!
//! The internet is 198.51.100.0/24 (TEST-NET-2, never routed anywhere real); its hosts get
//! no default route, so nothing on it can reach a home's 10.77.n.0/24 except through a
//! mapping the home's router created. A home's router sits on the internet as a host
//! (its "uplink", which can be delayed, lossy or unplugged like any host's link) and is
//! .254 on the home LAN. Two kinds of NAT:
//!
//! - [`Nat::PortPreserving`]: `masquerade` keeps a connection's source port where it is
//!   free, so a peer can predict the mapping and TCP hole punching can work;
//! - [`Nat::Symmetric`]: `masquerade fully-random` maps every connection to a random
//!   port, so the mapping the peer learns is useless and hole punching must fail.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{ip, run, wait_for_carrier, Host, Lab, LabError, LanId, Link, HOST_IFACE};

/// The internet segment's /24.
pub const INTERNET_PREFIX: [u8; 3] = [198, 51, 100];

/// The router's legs: its uplink is a lab host link (named like every host's), so that
/// `Lab::impair` and `Lab::set_link` work on it.
const WAN_IFACE: &str = HOST_IFACE;
const LAN_IFACE: &str = "lan0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping that keeps the source port (`masquerade`).
    PortPreserving,
    /// A new random port for every connection (`masquerade fully-random`).
    Symmetric,
}

/// A home: a LAN behind a NAT router on the internet.
#[derive(Debug, Clone)]
pub struct Home {
    pub name: String,
    /// Add hosts with `Lab::host(name, home.lan, …)`: they route through the router.
    pub lan: LanId,
    /// The router's side on the internet; `uplink.addr` is the home's public address.
    /// Delay it with `Lab::impair`, unplug it with `Lab::set_link`.
    pub uplink: Host,
    pub nat: Nat,
}

/// Why NAT labs cannot be built here, if they cannot.
pub fn nat_skip_reason() -> Option<String> {
    super::skip_reason().or_else(|| match Command::new("nft").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("NAT lab needs `nft` (apt-get install nftables)".into()),
    })
}

/// What a home router runs: masquerade out of the uplink; forward only what the home
/// started (or what belongs to it); drop new connections to the router itself from the
/// WAN side. Without that last rule the router's own stack answers a hole-punching SYN that
/// arrives before the local one went out with a RST, and punching then succeeds only when
/// both SYNs cross within microseconds (measured: 2 of 10 without it, 10 of 10 with it).
fn ruleset(nat: Nat) -> String {
    let masquerade = match nat {
        Nat::PortPreserving => "masquerade",
        Nat::Symmetric => "masquerade fully-random",
    };
    format!(
        r#"
table ip nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{WAN_IFACE}" {masquerade}
    }}
}}
table ip filter {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "{LAN_IFACE}" accept
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{WAN_IFACE}" ct state new,invalid drop
    }}
}}
"#
    )
}

/// Loads `rules` into `ns`'s nftables.
fn nft(ns: &str, rules: &str) -> Result<(), LabError> {
    let command = format!("ip netns exec {ns} nft -f -");
    let spawn_error = |source| LabError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(rules.as_bytes());
    let out = child.wait_with_output().map_err(spawn_error)?;
    written.map_err(spawn_error)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The topology of the cross-network scenarios and benchmark: a server (`mp`, for the
/// meeting point) on the internet segment, two homes behind their NATs, alice in one and
/// bob in the other.
pub struct TwoHomes {
    pub server: Host,
    pub home_a: Home,
    pub home_b: Home,
    pub alice: Host,
    pub bob: Host,
}

impl Lab {
    /// Builds [`TwoHomes`]: alice's home behind `nat_a`, bob's behind `nat_b`.
    pub fn two_homes(&mut self, nat_a: Nat, nat_b: Nat) -> Result<TwoHomes, LabError> {
        let internet = self.internet()?;
        let server = self.host("mp", internet, false)?;
        let home_a = self.home("home-a", internet, nat_a)?;
        let home_b = self.home("home-b", internet, nat_b)?;
        let alice = self.host("alice", home_a.lan, false)?;
        let bob = self.host("bob", home_b.lan, false)?;
        Ok(TwoHomes {
            server,
            home_a,
            home_b,
            alice,
            bob,
        })
    }

    /// The internet segment: a LAN on 198.51.100.0/24 whose hosts have no default route.
    /// Put servers (the meeting point) on it with `Lab::host`.
    pub fn internet(&mut self) -> Result<LanId, LabError> {
        let lan = self.lan()?;
        self.lans[lan.0].prefix = INTERNET_PREFIX;
        Ok(lan)
    }

    /// A new home LAN behind a `nat` router whose uplink is on `internet`.
    pub fn home(&mut self, name: &str, internet: LanId, nat: Nat) -> Result<Home, LabError> {
        let lan = self.lan()?;
        let ns = format!("pcr{}{}", self.tag, self.links.len());
        // Impairable: a home's uplink is where delay belongs (a userspace wire where the
        // kernel has no netem).
        let uplink = self.attach(&format!("{name}-router"), &ns, internet, true)?;

        let lan_ns = self.lans[lan.0].ns.clone();
        let port = format!("h{}", self.links.len());
        ip(&[
            "link", "add", LAN_IFACE, "netns", &ns, "type", "veth", "peer", "name", &port, "netns",
            &lan_ns,
        ])?;
        self.links.push(Link::Veth);
        ip(&["-n", &lan_ns, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &lan_ns, "link", "set", &port, "up"])?;
        let gateway = self.lans[lan.0].addr(254);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            LAN_IFACE,
        ])?;
        ip(&["-n", &ns, "link", "set", LAN_IFACE, "up"])?;
        wait_for_carrier(&ns, name)?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        )?;
        nft(&ns, &ruleset(nat))?;
        self.lans[lan.0].gateway = Some(gateway);
        Ok(Home {
            name: name.to_owned(),
            lan,
            uplink,
            nat,
        })
    }
}
