//! What a meeting point serves: the DHT (Kademlia, server mode, provider records only),
//! circuit relay v2, AutoNAT (server side), identify and ping. All standard libp2p
//! protocols, so devices could use any libp2p node that serves them.

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, identify, kad, ping, relay};

use super::MeetingPointConfig;
use crate::behaviour::{IDENTIFY_PROTOCOL, KAD_PROTOCOL};
use crate::store::BoundedStore;

/// The protocols a meeting point serves.
#[derive(NetworkBehaviour)]
pub(crate) struct MeetingPointBehaviour {
    pub(crate) relay: relay::Behaviour,
    pub(crate) kad: kad::Behaviour<BoundedStore>,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
}

impl MeetingPointBehaviour {
    pub(crate) fn new(keypair: &Keypair, config: &MeetingPointConfig) -> Self {
        let me = keypair.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        // The server keeps a record as long as the provider asked for, up to this cap;
        // devices announce pairing sessions that last minutes.
        kad_config.set_provider_record_ttl(Some(config.provider_record_ttl));
        // It provides nothing itself, and never republishes others' records.
        kad_config.set_provider_publication_interval(None);
        kad_config.set_publication_interval(None);
        kad_config.set_replication_interval(None);
        // It knows no other DHT server to bootstrap from: devices bootstrap from it.
        kad_config.set_periodic_bootstrap_interval(None);
        let store = BoundedStore::new(me, config.store);
        let mut kad = kad::Behaviour::with_config(me, store, kad_config);
        // Always a server: its purpose is to answer, whatever its reachability.
        kad.set_mode(Some(kad::Mode::Server));

        let limits = &config.relay;
        let relay_config = relay::Config {
            max_reservations: limits.max_reservations,
            max_reservations_per_peer: limits.max_reservations_per_peer,
            reservation_duration: limits.reservation_duration,
            max_circuits: limits.max_circuits,
            max_circuits_per_peer: limits.max_circuits_per_peer,
            max_circuit_duration: limits.max_circuit_duration,
            max_circuit_bytes: limits.max_circuit_bytes,
            // libp2p's default rate limits (per peer and per IP) stay.
            ..relay::Config::default()
        };

        let autonat_config = autonat::Config {
            only_global_ips: config.autonat_only_global_ips,
            // A server answers probes; it has nobody to probe itself (and does not need
            // to know its own reachability).
            use_connected: false,
            ..autonat::Config::default()
        };

        MeetingPointBehaviour {
            relay: relay::Behaviour::new(me, relay_config),
            kad,
            autonat: autonat::Behaviour::new(me, autonat_config),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), keypair.public())
                    .with_agent_version(format!("paircode-relay/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
        }
    }
}
