//! paircode networking on async-std: the async-io TCP and mDNS providers, async-std's
//! spawner and timer. Everything else lives in `paircode-net`, re-exported here.
//!
//! # Example
//!
//! Two nodes pair over 127.0.0.1 with mDNS off (it must never reach a real interface from
//! a test); the joiner knows the initiator's address as its DHT bootstrap peer.
//!
//! ```
//! use paircode_async_std::paircode_core::DeviceIdentity;
//! use paircode_async_std::{Error, GenerateOptions, NodeConfig};
//!
//! fn loopback(name: &str) -> NodeConfig {
//!     let mut config = NodeConfig::new(DeviceIdentity::generate(&mut rand_core::OsRng), name);
//!     config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
//!     config.mdns = false;
//!     config
//! }
//!
//! #[async_std::main]
//! async fn main() -> Result<(), Error> {
//!     let alice = paircode_async_std::start(loopback("alice-laptop")).await?;
//!     let mut bob_config = loopback("bob-phone");
//!     bob_config.bootstrap = alice.listen_addrs().await?;
//!     let bob = paircode_async_std::start(bob_config).await?;
//!
//!     let options = GenerateOptions { auto_accept: true, ..Default::default() };
//!     let (code, session) = alice.generate(options).await?;
//!     let (bob_on_alice, alice_on_bob) = futures::join!(session.result(), bob.join(&code));
//!     assert_eq!(bob_on_alice?.keys, alice_on_bob?.keys, "both derive the same keys");
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

struct AsyncStd;

impl Runtime for AsyncStd {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        async_std::task::spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        async_std::task::sleep(deadline.saturating_duration_since(Instant::now())).boxed()
    }
}

/// Starts a node on async-std's global executor; callable from any executor.
pub async fn start(config: NodeConfig) -> Result<Node, Error> {
    let tcp = tcp::async_io::Transport::new(tcp_config());
    let new_mdns = |peer| mdns::async_io::Behaviour::new(mdns_config(), peer);
    start_node(AsyncStd, config, tcp, new_mdns).await
}
