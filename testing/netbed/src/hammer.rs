//! Mallory: a libp2p client that sends a given number of wrong-code `Join`s at one
//! initiator over the pairing protocol, answering every `Challenge` with a made-up proof.
//!
//! Her Joins carry the session's discovery id (it is public: the initiator publishes it
//! in the DHT and sends it in the clear), so they reach the session itself rather than
//! bouncing off as "no session"; she never knows the code, so no proof can be right.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, SwarmBuilder};
use paircode_core::messages::{
    EphemeralKey, Join, Mac, Message, Nonce, Outcome, Prove, UNATTRIBUTED,
};
use paircode_core::DeviceInfo;
use paircode_core::DiscoveryId;
use paircode_net::protocol::{PairCodec, PAIR_PROTOCOL};

#[derive(Debug, thiserror::Error)]
pub enum HammerError {
    #[error("building the hammer's transport: {0}")]
    Transport(#[from] libp2p::noise::Error),
    #[error("entering network namespace {ns}: {source}")]
    Netns {
        ns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the hammer's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("dialing {addr}: {reason}")]
    Dial { addr: Multiaddr, reason: String },
    #[error("the initiator accepted a made-up proof")]
    Accepted,
    #[error("only {answered} of {wanted} Joins were answered within {within:?}")]
    TooSlow {
        answered: u32,
        wanted: u32,
        within: Duration,
    },
}

/// What Mallory saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HammerReport {
    /// Joins sent.
    pub joins: u32,
    /// Joins the initiator answered with a Challenge (each then got a bogus Prove).
    pub challenges: u32,
    /// Answers that turned her away (`Done{rejected}` or an error reply).
    pub rejections: u32,
    /// Requests that failed at the transport (timeouts, closed connections).
    pub failures: u32,
    /// Connections she had to open (1 unless the initiator closed on her).
    pub connections: u32,
}

/// Sends `joins` Joins for `discovery_id` at `target`, keeping `in_flight` exchanges
/// going at once, and returns once every Join has had its outcome (or after `patience`).
/// Must run inside a tokio runtime.
pub async fn hammer(
    target: Multiaddr,
    discovery_id: [u8; 32],
    joins: u32,
    in_flight: u32,
    patience: Duration,
) -> Result<HammerReport, HammerError> {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                PairCodec,
                [(PAIR_PROTOCOL, ProtocolSupport::Outbound)],
                request_response::Config::default(),
            )
        })
        .unwrap_or_else(|never| match never {})
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    // A Join and its nonce, which her Prove must repeat.
    let join = || {
        let nonce = Nonce(rand32());
        let bytes = Message::Join(Join {
            discovery_id: DiscoveryId(discovery_id),
            nonce,
            eph: EphemeralKey(rand32()),
            info: DeviceInfo::new("mallory").expect("a valid name"),
        })
        .encode();
        (nonce, bytes)
    };
    let dial = |swarm: &mut libp2p::Swarm<_>| {
        swarm.dial(target.clone()).map_err(|e| HammerError::Dial {
            addr: target.clone(),
            reason: e.to_string(),
        })
    };
    dial(&mut swarm)?;
    let mut report = HammerReport::default();
    // Requests in flight, with the nonce of the Join whose exchange they belong to.
    let mut pending: HashMap<OutboundRequestId, Nonce> = HashMap::new();
    let send_join = |swarm: &mut libp2p::Swarm<request_response::Behaviour<PairCodec>>,
                     pending: &mut HashMap<OutboundRequestId, Nonce>,
                     peer: &libp2p::PeerId| {
        let (nonce, bytes) = join();
        let id = swarm.behaviour_mut().send_request(peer, bytes);
        pending.insert(id, nonce);
    };
    let deadline = Instant::now() + patience;
    let mut done = 0u32;
    let mut connected = None;
    while done < joins {
        let event = match tokio::time::timeout_at(deadline.into(), swarm.select_next_some()).await {
            Ok(event) => event,
            Err(_) => {
                return Err(HammerError::TooSlow {
                    answered: done,
                    wanted: joins,
                    within: patience,
                })
            }
        };
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                report.connections += 1;
                connected = Some(peer_id);
                while report.joins < joins && (pending.len() as u32) < in_flight {
                    send_join(&mut swarm, &mut pending, &peer_id);
                    report.joins += 1;
                }
            }
            SwarmEvent::ConnectionClosed {
                num_established: 0, ..
            }
            | SwarmEvent::OutgoingConnectionError { .. } => {
                connected = None;
                // Her outstanding requests fail on their own; she comes back for more.
                tokio::time::sleep(Duration::from_millis(50)).await;
                dial(&mut swarm)?;
            }
            SwarmEvent::Behaviour(request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) => {
                let nonce = pending.remove(&request_id).unwrap_or(UNATTRIBUTED);
                match Message::decode(&response) {
                    Ok(Message::Challenge(_)) => {
                        report.challenges += 1;
                        let prove = Message::Prove(Prove {
                            nonce,
                            eph: EphemeralKey(rand32()),
                            info: DeviceInfo::new("mallory").expect("a valid name"),
                            mac: Mac(rand32()),
                        })
                        .encode();
                        let id = swarm.behaviour_mut().send_request(&peer, prove);
                        pending.insert(id, nonce);
                        continue;
                    }
                    Ok(Message::Done(d)) if d.outcome == Outcome::Accepted => {
                        return Err(HammerError::Accepted)
                    }
                    _ => report.rejections += 1,
                }
                done += 1;
                if report.joins < joins {
                    send_join(&mut swarm, &mut pending, &peer);
                    report.joins += 1;
                }
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                peer,
                request_id,
                ..
            }) => {
                pending.remove(&request_id);
                report.failures += 1;
                done += 1;
                if report.joins < joins && connected == Some(peer) {
                    send_join(&mut swarm, &mut pending, &peer);
                    report.joins += 1;
                }
            }
            _ => {}
        }
    }
    Ok(report)
}

fn rand32() -> [u8; 32] {
    let mut b = [0; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

/// Runs `hammer` on a thread of its own inside network namespace `ns` (so that its
/// sockets live on that host), on a single-threaded runtime so no socket is created on
/// another thread.
pub fn hammer_from(
    ns: &str,
    target: Multiaddr,
    discovery_id: [u8; 32],
    joins: u32,
    in_flight: u32,
    patience: Duration,
) -> std::thread::JoinHandle<Result<HammerReport, HammerError>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        crate::wire::enter_netns(&ns).map_err(|source| HammerError::Netns {
            ns: ns.clone(),
            source,
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(HammerError::Runtime)?;
        runtime.block_on(hammer(target, discovery_id, joins, in_flight, patience))
    })
}
