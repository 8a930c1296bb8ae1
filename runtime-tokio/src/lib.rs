//! paircode networking on tokio: the tokio TCP and mDNS providers, `tokio::spawn` and
//! tokio's timer. Everything else lives in `paircode-net`.

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
