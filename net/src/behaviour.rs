//! The swarm's behaviour: the pairing protocol plus discovery (mDNS, Kademlia), identify
//! (to learn peers' listen addresses for the DHT, and our address as a meeting point sees
//! it), ping (a dead link is otherwise only noticed by timeouts), and what reaching devices
//! behind NATs takes: the circuit relay v2 client, DCUtR and an AutoNAT client.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, dcutr, identify, kad, mdns, ping, relay};

use crate::limits::ConnectionLimits;
use crate::negotiation::Confirmed;
use crate::protocol::{PairCodec, DEVICE_PROTOCOL, PAIR_PROTOCOL};
pub(crate) use crate::protocol::{IDENTIFY_PROTOCOL, KAD_PROTOCOL};
use crate::store::{BoundedStore, StoreLimits};

/// `M` is the runtime's mDNS behaviour: `libp2p::mdns::Provider` cannot be named outside
/// libp2p, so the shared code cannot spell `mdns::Behaviour<P>` and takes any behaviour
/// that emits mDNS events instead.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event>,
{
    /// Hard caps on connections (see `limits`). First, so that a refused connection is
    /// refused before any other behaviour sets anything up for it.
    pub(crate) limits: libp2p::connection_limits::Behaviour,
    /// The handshake; its streams are negotiated lazily only through a relay, where a
    /// round trip costs most (see `negotiation`).
    pub(crate) pair: Confirmed<request_response::Behaviour<PairCodec>>,
    /// Paired devices' presence and unpair notices (`paircode_core::presence`).
    pub(crate) device: request_response::Behaviour<PairCodec>,
    /// Provider records, bounded per remote peer; our own always fit (see `store`).
    pub(crate) kad: kad::Behaviour<BoundedStore>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    /// Behind a toggle so it can be off, and replaced by a fresh instance when a join
    /// starts: libp2p-mdns re-queries only every 5 minutes once anything answered.
    pub(crate) mdns: Toggle<M>,
    /// Application streams to paired devices (see `streams`), negotiated eagerly so that
    /// a refused protocol is told before the stream is handed out (see `negotiation`).
    pub(crate) streams: Confirmed<libp2p_stream::Behaviour>,
    /// Reservations on meeting points and circuits through them.
    pub(crate) relay_client: relay::client::Behaviour,
    /// Upgrades a relayed connection to a direct one where the NATs allow.
    pub(crate) dcutr: dcutr::Behaviour,
    /// Asks meeting points whether we are publicly reachable; only with meeting points.
    pub(crate) autonat: Toggle<autonat::Behaviour>,
}

/// How a node reaches beyond its LAN.
pub(crate) struct Reach {
    /// Meeting points are configured: the node is a DHT client until AutoNAT says it is
    /// publicly reachable (issue 10: devices are DHT clients unless reachable), and runs
    /// AutoNAT.
    pub(crate) meeting_points: bool,
    /// AutoNAT counts only global addresses (off in labs built on private ranges).
    pub(crate) autonat_only_global_ips: bool,
}

impl<M> Behaviour<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event>,
{
    pub(crate) fn new(
        keypair: &Keypair,
        mdns: Option<M>,
        record_ttl: Duration,
        relay_client: relay::client::Behaviour,
        reach: Reach,
        limits: &ConnectionLimits,
    ) -> Self {
        let peer = keypair.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        // A provider record announces one pairing session: it must not outlive the code.
        kad_config.set_provider_record_ttl(Some(record_ttl));
        kad_config.set_provider_publication_interval(None);
        kad_config.set_query_timeout(Duration::from_secs(10));
        let store = BoundedStore::new(peer, StoreLimits::device());
        let mut kad = kad::Behaviour::with_config(peer, store, kad_config);
        // Auto mode would stay a client until an external address is confirmed, which never
        // happens on a LAN or loopback: peers would then neither store nor answer records.
        // With meeting points it would turn server on the relayed address alone; the
        // driver switches to server when AutoNAT confirms a public address instead.
        let mode = match reach.meeting_points {
            true => kad::Mode::Client,
            false => kad::Mode::Server,
        };
        kad.set_mode(Some(mode));
        let autonat = reach.meeting_points.then(|| {
            autonat::Behaviour::new(
                peer,
                autonat::Config {
                    only_global_ips: reach.autonat_only_global_ips,
                    // The first probe soon after the meeting point answered identify.
                    boot_delay: Duration::from_secs(1),
                    // Only meeting points are asked (added as servers once identified): a
                    // device on the same LAN would dial back and call us public.
                    use_connected: false,
                    ..Default::default()
                },
            )
        });
        Behaviour {
            limits: limits.behaviour(),
            pair: Confirmed::direct_only(request_response::Behaviour::with_codec(
                PairCodec,
                [(PAIR_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(64),
            )),
            device: request_response::Behaviour::with_codec(
                PairCodec,
                [(DEVICE_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            ),
            kad,
            // No cache of peers' addresses: anyone can advertise hundreds, and the driver
            // keeps a bounded address book of its own.
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), keypair.public())
                    .with_cache_size(0),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(10)),
            ),
            mdns: Toggle::from(mdns),
            streams: Confirmed::new(libp2p_stream::Behaviour::new()),
            relay_client,
            dcutr: dcutr::Behaviour::new(peer),
            autonat: Toggle::from(autonat),
        }
    }
}
