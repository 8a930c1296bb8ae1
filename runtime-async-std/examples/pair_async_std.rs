//! Two async-std nodes in one process pair over 127.0.0.1 (mDNS off): the joiner knows
//! only the initiator's address as a DHT bootstrap and finds the session through Kademlia.
//!
//! cargo run -p paircode-async-std --example pair_async_std

#[async_std::main]
async fn main() -> Result<(), paircode_async_std::Error> {
    paircode_async_std::demo::pair_on_loopback(paircode_async_std::start).await
}
