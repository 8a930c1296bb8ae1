//! paircode networking on tokio: the tokio TCP and mDNS providers, `tokio::spawn` and
//! tokio's timer. Everything else lives in `paircode-net`, re-exported here.
//!
//! # Example
//!
//! Two nodes pair over 127.0.0.1, then each sees the other online. mDNS is off (it must
//! never reach a real interface from a test); the joiner knows the initiator's address as
//! its DHT bootstrap peer, and asks the peers it is connected to at once.
//!
//! ```
//! use futures::StreamExt;
//! use paircode_tokio::paircode_core::DeviceIdentity;
//! use paircode_tokio::{Error, GenerateOptions, NodeConfig, NodeEvent};
//!
//! fn loopback(name: &str) -> NodeConfig {
//!     let mut config = NodeConfig::new(DeviceIdentity::generate(&mut rand_core::OsRng), name);
//!     config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
//!     config.mdns = false;
//!     config
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     let alice = paircode_tokio::start(loopback("alice-laptop")).await?;
//!     let mut bob_config = loopback("bob-phone");
//!     bob_config.bootstrap = alice.listen_addrs().await?;
//!     let bob = paircode_tokio::start(bob_config).await?;
//!
//!     // Alice shows the code; Bob types it in. `auto_accept` skips Alice's confirm prompt.
//!     let options = GenerateOptions { auto_accept: true, ..Default::default() };
//!     let (code, session) = alice.generate(options).await?;
//!     let (bob_on_alice, alice_on_bob) = futures::join!(session.result(), bob.join(&code));
//!     let (bob_on_alice, alice_on_bob) = (bob_on_alice?, alice_on_bob?);
//!     assert_eq!(bob_on_alice.info.name, "bob-phone");
//!     assert_eq!(alice_on_bob.info.name, "alice-laptop");
//!     assert_eq!(bob_on_alice.keys, alice_on_bob.keys, "both derive the same keys");
//!
//!     // The embedder stores the devices and registers them; the node reports presence.
//!     let mut events = alice.events();
//!     alice.add_paired(bob_on_alice.peer.clone())?;
//!     loop {
//!         match events.next().await {
//!             Some(NodeEvent::PairedOnline(peer)) => break assert_eq!(peer, bob.peer_id()),
//!             Some(_) => continue,
//!             None => panic!("alice stopped"),
//!         }
//!     }
//!
//!     bob.shutdown().await;
//!     alice.shutdown().await;
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

use std::time::Instant;

use futures::future::BoxFuture;
use futures::FutureExt;
use libp2p::{mdns, tcp};
pub use paircode_net::*;
use tokio::runtime::Handle;

struct Tokio(Handle);

impl Runtime for Tokio {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0.spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        tokio::time::sleep_until(deadline.into()).boxed()
    }
}

/// Starts a node on the current tokio runtime (call it from within one).
pub async fn start(config: NodeConfig) -> Result<Node, Error> {
    let tcp = tcp::tokio::Transport::new(tcp_config());
    let new_mdns = |peer| mdns::tokio::Behaviour::new(mdns_config(), peer);
    start_node(Tokio(Handle::current()), config, tcp, new_mdns).await
}

/// Starts a meeting point (`paircode relay`) on the current tokio runtime.
pub async fn start_meeting_point(
    config: meeting_point::MeetingPointConfig,
) -> Result<meeting_point::MeetingPoint, meeting_point::MeetingPointError> {
    let tcp = tcp::tokio::Transport::new(tcp_config());
    meeting_point::start_meeting_point(Tokio(Handle::current()), config, tcp).await
}
