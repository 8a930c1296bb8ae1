//! The daemon's descriptor budget: the process's limit (raised to the hard limit where the
//! soft one is lower), of which a fixed share is kept for everything that is not a peer
//! connection, so that no flood of peers can leave the daemon without a descriptor for its
//! user's CLI or its store.

use paircode_net::ConnectionLimits;

use crate::ipc_server::MAX_CLIENTS;

/// Descriptors that are not peer connections: CLI clients, plus the store, log, lock and
/// pid files, the runtime's own, listeners and mDNS sockets, with a margin.
const RESERVED: u64 = MAX_CLIENTS as u64 + 64;
/// No need to go beyond this even where the hard limit allows it.
const ENOUGH: u64 = 65_536;

/// Connection caps for this process.
pub fn connection_limits() -> (u64, ConnectionLimits) {
    let fds = raise_fd_limit();
    (fds, ConnectionLimits::for_descriptors(fds, RESERVED))
}

/// Raises the soft `RLIMIT_NOFILE` towards the hard one and returns the soft limit in force.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    let wanted = limit.rlim_max.min(ENOUGH);
    if wanted > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own; lowering nothing, raising within max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return wanted;
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_the_rest() {
        let (fds, limits) = connection_limits();
        let connections = u64::from(limits.max_established)
            + u64::from(limits.max_pending_incoming)
            + u64::from(limits.max_pending_outgoing);
        assert!(
            fds < 160 || connections + RESERVED <= fds,
            "{fds} {limits:?}"
        );
    }
}
