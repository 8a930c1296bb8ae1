//! paircode networking on async-std: the async-io TCP and mDNS providers, async-std's
//! spawner and timer. Everything else lives in `paircode-net`.

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
