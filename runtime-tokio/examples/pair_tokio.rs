//! Two tokio nodes in one process pair over 127.0.0.1 (mDNS off): the joiner knows only
//! the initiator's address as a DHT bootstrap and finds the session through Kademlia.
//!
//! cargo run -p paircode-tokio --example pair_tokio

#[tokio::main]
async fn main() -> Result<(), paircode_tokio::Error> {
    paircode_tokio::demo::pair_on_loopback(paircode_tokio::start).await
}
