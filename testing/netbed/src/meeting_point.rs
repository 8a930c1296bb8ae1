//! A meeting point (`paircode relay`'s server) running in-process inside a lab host's
//! namespace, for tests that put devices behind NATs.

use std::sync::mpsc;
use std::time::Duration;

use futures::channel::oneshot;
use libp2p::{identity, Multiaddr};
use paircode_tokio::meeting_point::MeetingPointConfig;

use crate::lab::Host;
use crate::wire::enter_netns;

/// A running meeting point; it stops when this is dropped.
pub struct RunningMeetingPoint {
    /// Its address, ending in `/p2p/<peer id>`.
    pub addr: Multiaddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningMeetingPoint {
    /// Starts one on `host` (a thread that entered its namespace, with its own runtime).
    pub fn start(host: &Host) -> RunningMeetingPoint {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let listen: Multiaddr = format!("/ip4/{}/tcp/0", host.addr).parse().expect("valid");
        let ns = host.ns.clone();
        let thread = std::thread::spawn(move || {
            enter_netns(&ns).expect("enter namespace");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let mut config = MeetingPointConfig::new(
                        identity::Keypair::generate_ed25519(),
                        vec![listen],
                    );
                    // The lab's addresses are private ranges.
                    config.autonat_only_global_ips = false;
                    let relay = paircode_tokio::start_meeting_point(config)
                        .await
                        .expect("meeting point starts");
                    addr_tx.send(relay.addrs()[0].clone()).expect("test waits");
                    let _ = stopped.await;
                    relay.shutdown().await;
                });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("meeting point address");
        RunningMeetingPoint {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for RunningMeetingPoint {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
