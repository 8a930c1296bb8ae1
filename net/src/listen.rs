//! Binding a swarm's listen addresses before a node or meeting point reports itself up, so
//! that the addresses it reports are complete.

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, Swarm};

/// A listen address that could not be bound, and why.
pub(crate) struct ListenFailure {
    pub(crate) addr: Multiaddr,
    pub(crate) reason: String,
}

/// Listens on every address of `addrs` and returns once each is bound, with the addresses
/// the listeners reported meanwhile (a wildcard listener reports one per interface).
pub(crate) async fn listen_on_all<B: NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    addrs: &[Multiaddr],
) -> Result<Vec<Multiaddr>, ListenFailure> {
    let mut waiting = Vec::new();
    for addr in addrs {
        let id = swarm.listen_on(addr.clone()).map_err(|e| ListenFailure {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        waiting.push((id, addr.clone()));
    }
    let mut bound = Vec::new();
    while !waiting.is_empty() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                waiting.retain(|(id, _)| *id != listener_id);
                bound.push(address);
            }
            SwarmEvent::ListenerError { listener_id, error }
            | SwarmEvent::ListenerClosed {
                listener_id,
                reason: Err(error),
                ..
            } => {
                if let Some((_, addr)) = waiting.iter().find(|(id, _)| *id == listener_id) {
                    return Err(ListenFailure {
                        addr: addr.clone(),
                        reason: error.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(bound)
}
