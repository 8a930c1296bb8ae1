//! A small network of hosts built from network namespaces: LANs (one Linux bridge each),
//! hosts attached to a LAN, routers between LANs, link down/up, and delay and loss on a
//! host's link.
//!
//! LAN `n` (counting from 1) is 10.77.n.0/24; its hosts get .1, .2, … and its router .254.
//! Addresses exist only inside the lab's namespaces. Multicast (mDNS) flows within a LAN;
//! routers forward unicast only (no multicast routing daemon runs, and mDNS is link-local
//! anyway), so hosts on different LANs can reach each other only by address.
//!
//! Homes behind NAT routers and an "internet" segment without routes to them: see `nat`.
//!
//! Dropping the lab kills every process still running inside its namespaces, then deletes
//! them, also when a test panics.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::wire::Wire;

mod nat;
pub use nat::{nat_skip_reason, Home, Nat, TwoHomes, INTERNET_PREFIX};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("`{command}` could not be run: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the userspace link of host {host}: {source}")]
    Wire {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("host {0} was not created impairable, and this kernel has no netem")]
    NotImpairable(String),
    #[error("the link of {0} never came up")]
    LinkNeverUp(String),
    #[error("a lab holds at most 250 LANs and 250 hosts per LAN")]
    TooBig,
}

/// Delay and loss on a host's link, in both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// Added to each direction (a round trip gets twice this).
    pub delay: Duration,
    /// Chance that a frame is lost, per direction, in percent.
    pub loss_percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanId(usize);

/// How a host's link is made.
#[derive(Debug)]
enum Link {
    /// A veth pair; impaired with `tc netem` where the kernel has it.
    Veth,
    /// Two TAP devices and a forwarding thread (see `wire`), for kernels without netem.
    Wire(Wire),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// The host's network namespace: run a program there with `ip netns exec NS …`.
    pub ns: String,
    pub addr: Ipv4Addr,
    lan: LanId,
    /// The host's port on its LAN's bridge.
    port: String,
    index: usize,
}

impl Host {
    /// `/ip4/ADDR/tcp/0`: listen on this host's address, on a port the system picks.
    pub fn listen_addr(&self) -> String {
        format!("/ip4/{}/tcp/0", self.addr)
    }

    /// `ip netns exec NS program`: a command to run on this host.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns]).arg(program);
        command
    }
}

/// The name of the host side of every host's link.
pub const HOST_IFACE: &str = "eth0";

#[derive(Debug)]
struct Lan {
    ns: String,
    /// The first three octets of its /24: 10.77.n for the n-th LAN, or the internet's
    /// (see `nat`).
    prefix: [u8; 3],
    hosts: u8,
    gateway: Option<Ipv4Addr>,
}

impl Lan {
    fn addr(&self, octet: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, octet)
    }
}

#[derive(Debug)]
pub struct Lab {
    tag: String,
    lans: Vec<Lan>,
    links: Vec<Link>,
    hosts: Vec<Host>,
    /// Every namespace created, hosts and bridges alike, in creation order.
    namespaces: Vec<String>,
}

fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn ip(args: &[&str]) -> Result<(), LabError> {
    run("ip", args).map(|_| ())
}

/// A bridge `br0` in namespace `ns`, up, that passes multicast (mDNS) at once: no
/// snooping, no STP, no forwarding delay.
fn add_bridge(ns: &str) -> Result<(), LabError> {
    ip(&["-n", ns, "link", "add", "br0", "type", "bridge"])?;
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
        "stp_state",
        "0",
        "forward_delay",
        "0",
    ])?;
    ip(&["-n", ns, "link", "set", "br0", "up"])
}

/// Whether `tc … netem` works here. Checked once, on a veth pair in a scratch namespace.
pub fn netem_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let ns = format!("pcnetem{}", std::process::id());
        let works = ip(&["netns", "add", &ns]).is_ok()
            && ip(&[
                "link", "add", "t0", "netns", &ns, "type", "veth", "peer", "name", "t1", "netns",
                &ns,
            ])
            .is_ok()
            && run(
                "ip",
                &[
                    "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "t0", "root", "netem",
                    "delay", "1ms",
                ],
            )
            .is_ok();
        let _ = ip(&["netns", "del", &ns]);
        works
    })
}

/// Why a lab cannot be built here, if it cannot: the caller prints it as its skip line.
pub fn skip_reason() -> Option<String> {
    crate::namespace_skip_reason().or_else(|| {
        if std::path::Path::new("/dev/net/tun").exists() || netem_available() {
            None
        } else {
            Some("neither netem nor /dev/net/tun is available for link faults".into())
        }
    })
}

impl Lab {
    pub fn new() -> Lab {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        Lab {
            tag: format!(
                "{}x{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            lans: Vec::new(),
            links: Vec::new(),
            hosts: Vec::new(),
            namespaces: Vec::new(),
        }
    }

    fn add_ns(&mut self, ns: &str) -> Result<(), LabError> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])
    }

    /// A new LAN: a namespace holding one bridge.
    pub fn lan(&mut self) -> Result<LanId, LabError> {
        let number = u8::try_from(self.lans.len() + 1).map_err(|_| LabError::TooBig)?;
        if number > 250 {
            return Err(LabError::TooBig);
        }
        let ns = format!("pcl{}{}", self.tag, number);
        self.add_ns(&ns)?;
        add_bridge(&ns)?;
        self.lans.push(Lan {
            ns,
            prefix: [10, 77, number],
            hosts: 0,
            gateway: None,
        });
        Ok(LanId(self.lans.len() - 1))
    }

    /// Creates a namespace and links it to `lan`'s bridge; returns it with its address.
    fn attach(
        &mut self,
        name: &str,
        ns: &str,
        lan: LanId,
        impairable: bool,
    ) -> Result<Host, LabError> {
        self.add_ns(ns)?;
        let index = self.links.len();
        let port = format!("h{index}");
        let lan_ns = self.lans[lan.0].ns.clone();
        let octet = {
            let l = &mut self.lans[lan.0];
            l.hosts = l.hosts.checked_add(1).ok_or(LabError::TooBig)?;
            if l.hosts > 250 {
                return Err(LabError::TooBig);
            }
            l.hosts
        };
        let link = if impairable && !netem_available() {
            let wire =
                Wire::start(ns, HOST_IFACE, &lan_ns, &port).map_err(|source| LabError::Wire {
                    host: name.to_owned(),
                    source,
                })?;
            Link::Wire(wire)
        } else {
            ip(&[
                "link", "add", HOST_IFACE, "netns", ns, "type", "veth", "peer", "name", &port,
                "netns", &lan_ns,
            ])?;
            Link::Veth
        };
        self.links.push(link);
        ip(&["-n", &lan_ns, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &lan_ns, "link", "set", &port, "up"])?;
        ip(&["-n", ns, "link", "set", HOST_IFACE, "multicast", "on"])?;
        let addr = self.lans[lan.0].addr(octet);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            HOST_IFACE,
        ])?;
        ip(&["-n", ns, "link", "set", HOST_IFACE, "up"])?;
        wait_for_carrier(ns, name)?;
        Ok(Host {
            name: name.to_owned(),
            ns: ns.to_owned(),
            addr,
            lan,
            port,
            index,
        })
    }

    /// A host on `lan`. An `impairable` host can be given delay and loss with
    /// [`Lab::impair`] (with netem where the kernel has it, else over a userspace link).
    pub fn host(&mut self, name: &str, lan: LanId, impairable: bool) -> Result<Host, LabError> {
        let ns = format!("pch{}{}", self.tag, self.links.len());
        let host = self.attach(name, &ns, lan, impairable)?;
        if let Some(gateway) = self.lans[lan.0].gateway {
            default_route(&ns, gateway)?;
        }
        self.hosts.push(host.clone());
        Ok(host)
    }

    /// A router with a leg on each of `lans` (address .254 there), forwarding unicast
    /// between them. Hosts on those LANs, present and future, route through it.
    pub fn router(&mut self, name: &str, lans: &[LanId]) -> Result<(), LabError> {
        let ns = format!("pcr{}{}", self.tag, self.links.len());
        self.add_ns(&ns)?;
        for (i, lan) in lans.iter().enumerate() {
            let lan_ns = self.lans[lan.0].ns.clone();
            let port = format!("h{}", self.links.len());
            let leg = format!("leg{i}");
            ip(&[
                "link", "add", &leg, "netns", &ns, "type", "veth", "peer", "name", &port, "netns",
                &lan_ns,
            ])?;
            self.links.push(Link::Veth);
            ip(&["-n", &lan_ns, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &lan_ns, "link", "set", &port, "up"])?;
            let addr = self.lans[lan.0].addr(254);
            ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", &leg])?;
            ip(&["-n", &ns, "link", "set", &leg, "up"])?;
        }
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
        for lan in lans {
            let gateway = self.lans[lan.0].addr(254);
            self.lans[lan.0].gateway = Some(gateway);
            for host in self.hosts.iter().filter(|h| h.lan == *lan) {
                default_route(&host.ns, gateway)?;
            }
        }
        Ok(())
    }

    /// Pulls (or plugs back in) the cable of `host`: frames in flight are lost.
    pub fn set_link(&self, host: &Host, up: bool) -> Result<(), LabError> {
        let state = if up { "up" } else { "down" };
        if let Link::Wire(wire) = &self.links[host.index] {
            if !up {
                wire.flush();
            }
        }
        ip(&["-n", &host.ns, "link", "set", HOST_IFACE, state])?;
        if up {
            wait_for_carrier(&host.ns, &host.name)?;
            // The default route went away with the link; a routed host needs it back.
            if let Some(gateway) = self.lans[host.lan.0].gateway {
                default_route(&host.ns, gateway)?;
            }
        }
        Ok(())
    }

    /// Sets delay and loss on `host`'s link, both directions; a default `Impairment`
    /// removes them.
    pub fn impair(&self, host: &Host, impairment: Impairment) -> Result<(), LabError> {
        match &self.links[host.index] {
            Link::Wire(wire) => {
                wire.set_impairment(impairment);
                Ok(())
            }
            Link::Veth if netem_available() => {
                let lan_ns = &self.lans[host.lan.0].ns;
                for (ns, dev) in [
                    (host.ns.as_str(), HOST_IFACE),
                    (lan_ns.as_str(), &host.port),
                ] {
                    if impairment == Impairment::default() {
                        let _ = run(
                            "ip",
                            &[
                                "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root",
                            ],
                        );
                        continue;
                    }
                    let delay = format!("{}us", impairment.delay.as_micros());
                    let loss = format!("{}%", impairment.loss_percent);
                    run(
                        "ip",
                        &[
                            "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root",
                            "netem", "delay", &delay, "loss", &loss,
                        ],
                    )?;
                }
                Ok(())
            }
            Link::Veth => Err(LabError::NotImpairable(host.name.clone())),
        }
    }

    /// Kills every process still running in one of the lab's namespaces (daemons that a
    /// failed test left behind included).
    pub fn kill_all(&self) {
        for ns in &self.namespaces {
            if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

/// Sends `ns`'s traffic for other subnets through `gateway` (the router's leg on its LAN).
fn default_route(ns: &str, gateway: Ipv4Addr) -> Result<(), LabError> {
    ip(&[
        "-n",
        ns,
        "route",
        "replace",
        "default",
        "via",
        &gateway.to_string(),
    ])
}

fn wait_for_carrier(ns: &str, host: &str) -> Result<(), LabError> {
    for _ in 0..100 {
        let up = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show"])
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.contains(": lo:"))
                    .all(|l| l.contains("LOWER_UP"))
            });
        if up {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(LabError::LinkNeverUp(host.to_owned()))
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.kill_all();
        // Stopping the wires closes their TAP devices before the namespaces go.
        self.links.clear();
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
