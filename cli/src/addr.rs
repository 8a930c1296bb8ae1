//! The address forms the daemon can use, checked while the arguments are parsed: a wrong
//! form is a usage error (exit 2) before a password is asked for or a daemon started.
//!
//! The node speaks TCP only and resolves no names, so a listen address is an IP and a TCP
//! port, and a bootstrap address also names the peer to expect there.

use paircode_net::Multiaddr;

use crate::error::UsageError;

pub const LISTEN_EXAMPLE: &str = "/ip4/0.0.0.0/tcp/0";
pub const BOOTSTRAP_EXAMPLE: &str =
    "/ip4/192.168.1.20/tcp/40123/p2p/12D3KooWHhN1kvKyfTrkGUWvTRQFvPLGzZvn4T7mZ3dHBSDqNNw2";

/// `--listen`: `/ip4|ip6/ADDRESS/tcp/PORT`.
pub fn listen(value: &str) -> Result<Multiaddr, UsageError> {
    check(value, "listen", &["tcp"], LISTEN_EXAMPLE)
}

/// `--bootstrap`: `/ip4|ip6/ADDRESS/tcp/PORT/p2p/PEER-ID`, as `paircode status` prints it.
pub fn bootstrap(value: &str) -> Result<Multiaddr, UsageError> {
    check(value, "bootstrap", &["tcp", "p2p"], BOOTSTRAP_EXAMPLE)
}

fn check(
    value: &str,
    what: &'static str,
    after_ip: &[&str],
    example: &'static str,
) -> Result<Multiaddr, UsageError> {
    let wrong = |reason: String| UsageError::Multiaddr {
        what,
        value: value.to_string(),
        reason,
        example,
    };
    let addr: Multiaddr = value.parse().map_err(|e| wrong(format!("{e}")))?;
    let stack: Vec<String> = addr.protocol_stack().map(str::to_string).collect();
    let ip = stack.first().map(String::as_str);
    if !matches!(ip, Some("ip4" | "ip6")) || stack[1..] != *after_ip {
        let expected = format!("/ip4 or /ip6, then /{}", after_ip.join(", /"));
        return Err(wrong(format!("expected {expected}")));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_accepted() {
        listen(LISTEN_EXAMPLE).unwrap();
        listen("/ip6/::1/tcp/4001").unwrap();
        bootstrap(BOOTSTRAP_EXAMPLE).unwrap();
    }

    #[test]
    fn wrong_forms_name_the_right_one() {
        for (check, value, example) in [
            (listen as fn(&str) -> _, "127.0.0.1:4001", LISTEN_EXAMPLE),
            (listen, "/ip4/127.0.0.1/udp/4001/quic-v1", LISTEN_EXAMPLE),
            (listen, "/ip4/127.0.0.1", LISTEN_EXAMPLE),
            (listen, "/dns4/example.org/tcp/1", LISTEN_EXAMPLE),
            (bootstrap, "/ip4/127.0.0.1/tcp/4001", BOOTSTRAP_EXAMPLE),
            (
                bootstrap,
                "/ip4/127.0.0.1/tcp/4001/p2p/nonsense",
                BOOTSTRAP_EXAMPLE,
            ),
        ] {
            let e = check(value).unwrap_err().to_string();
            assert!(e.contains(value) && e.contains(example), "{value}: {e}");
        }
    }
}
