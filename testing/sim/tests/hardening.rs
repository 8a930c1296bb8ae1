//! Attacks of issue 10 (protocol hardening), each named for the attack, on a small
//! discrete-event lab: real `PairingHost`s, a virtual clock, a fixed one-way latency, and
//! scripted hostile peers that are not state machines at all (they flood, stay silent or
//! answer with whatever hurts most).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use paircode_core::messages::{Done, EphemeralKey, Join, Message, Nonce, RejectReason};
use paircode_core::{
    Action, Code, Config, DeviceInfo, FailReason, LocalDevice, PairedDevice, Pairing, PairingHost,
    PeerId, Role, Verification,
};
use paircode_sim::ids::{real_device, synthetic_peer_id};
use paircode_sim::random::{bytes32, stream_rng, Stream};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

/// How a scripted peer answers what it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hostile {
    /// Never answers.
    Silent,
    /// Answers every message with bytes that are no message.
    Garbage,
    /// Says it holds no session, echoing the attempt's nonce: indistinguishable from an
    /// idle device.
    NoSession,
    /// Claims the code has expired, echoing the attempt's nonce.
    ClaimsExpired,
}

enum Event {
    Deliver {
        to: PeerId,
        from: PeerId,
        bytes: Vec<u8>,
    },
    /// The flooder sends this many Joins from fresh identities to the initiator.
    Flood(usize),
    /// mDNS re-announces: the running initiators, then every hostile LAN peer (which
    /// answer at once, so they come last).
    Announce,
    /// A host starts its session.
    Start(PeerId, Role),
}

struct Lab {
    start: Instant,
    now: Instant,
    latency: Duration,
    rng: ChaCha20Rng,
    code: Code,
    cfg: Config,
    hosts: BTreeMap<PeerId, PairingHost>,
    /// Initiators that are running (discoverable through the DHT).
    published: BTreeSet<PeerId>,
    hostile: BTreeMap<PeerId, Hostile>,
    events: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    completed: BTreeMap<PeerId, (Duration, Box<PairedDevice>)>,
    failed: BTreeMap<PeerId, (Duration, FailReason)>,
    /// When each host first sent a Challenge (the initiator "answering").
    first_challenge: BTreeMap<PeerId, Duration>,
    /// Joins of the flood, for the flooder to aim at.
    flood_target: Option<PeerId>,
    flood_every: Duration,
    flood_until: Duration,
}

impl Lab {
    fn new(cfg: Config, latency: Duration) -> Lab {
        let mut rng = stream_rng(7, Stream::Setup);
        let code = Code::generate(&mut rng);
        let start = Instant::now();
        Lab {
            start,
            now: start,
            latency,
            rng,
            code,
            cfg,
            hosts: BTreeMap::new(),
            published: BTreeSet::new(),
            hostile: BTreeMap::new(),
            events: BTreeMap::new(),
            seq: 0,
            completed: BTreeMap::new(),
            failed: BTreeMap::new(),
            first_challenge: BTreeMap::new(),
            flood_target: None,
            flood_every: Duration::MAX,
            flood_until: Duration::ZERO,
        }
    }

    fn add_host(&mut self, local: LocalDevice, role: Role, at: Duration) -> PeerId {
        let peer = local.peer.clone();
        self.hosts.insert(peer.clone(), PairingHost::new(local));
        self.schedule(at, Event::Start(peer.clone(), role));
        peer
    }

    fn add_hostile(&mut self, behaviour: Hostile) -> PeerId {
        let peer = synthetic_peer_id(&mut self.rng);
        self.hostile.insert(peer.clone(), behaviour);
        peer
    }

    fn schedule(&mut self, after: Duration, event: Event) {
        self.seq += 1;
        self.events.insert((self.start + after, self.seq), event);
    }

    fn schedule_in(&mut self, delay: Duration, event: Event) {
        let at = self.now + delay - self.start;
        self.schedule(at, event);
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Floods `target` with `per_tick` Joins every `every` until `until`.
    fn flood(&mut self, target: PeerId, per_tick: usize, every: Duration, until: Duration) {
        self.flood_target = Some(target);
        self.flood_every = every;
        self.flood_until = until;
        self.schedule(Duration::ZERO, Event::Flood(per_tick));
    }

    /// Runs until `until` (virtual), or until `stop` holds. `probe` runs after every event.
    fn run(&mut self, until: Duration, mut probe: impl FnMut(&Lab), stop: impl Fn(&Lab) -> bool) {
        let end = self.start + until;
        loop {
            if stop(self) {
                return;
            }
            let next_event = self.events.keys().next().map(|(at, _)| *at);
            let next_timer = self.hosts.values().filter_map(|h| h.poll_timeout()).min();
            let Some(next) = [next_event, next_timer].into_iter().flatten().min() else {
                return;
            };
            if next > end {
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            if next_event == Some(next) {
                let (_, event) = self.events.pop_first().expect("peeked");
                self.dispatch(event);
            } else {
                let due: Vec<PeerId> = self
                    .hosts
                    .iter()
                    .filter(|(_, h)| h.poll_timeout().is_some_and(|at| at <= now))
                    .map(|(p, _)| p.clone())
                    .collect();
                for peer in due {
                    self.hosts.get_mut(&peer).unwrap().handle_timeout(now);
                    self.drain(&peer);
                }
            }
            probe(self);
        }
    }

    fn dispatch(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Start(peer, role) => {
                let (code, cfg) = (self.code.clone(), self.cfg.clone());
                let host = self.hosts.get_mut(&peer).unwrap();
                host.start(role, cfg, &code, now, &mut self.rng).unwrap();
                if role == Role::Initiator {
                    self.published.insert(peer.clone());
                }
                self.drain(&peer);
            }
            Event::Deliver { to, from, bytes } => {
                if let Some(host) = self.hosts.get_mut(&to) {
                    host.handle_message(&from, &bytes, now);
                    self.drain(&to);
                } else if let Some(behaviour) = self.hostile.get(&to).copied() {
                    self.hostile_answer(behaviour, to, from, &bytes);
                }
            }
            Event::Flood(per_tick) => {
                let target = self.flood_target.clone().expect("flood has a target");
                let discovery_id = self.code.keys().discovery_id;
                for _ in 0..per_tick {
                    let from = synthetic_peer_id(&mut self.rng);
                    let join = Join {
                        discovery_id,
                        nonce: Nonce(bytes32(&mut self.rng)),
                        eph: EphemeralKey(bytes32(&mut self.rng)),
                        info: DeviceInfo::new("mallory").unwrap(),
                    };
                    let bytes = Message::Join(join).encode();
                    let to = target.clone();
                    self.schedule_in(self.latency, Event::Deliver { to, from, bytes });
                }
                if self.elapsed() + self.flood_every < self.flood_until {
                    self.schedule_in(self.flood_every, Event::Flood(per_tick));
                }
            }
            Event::Announce => {
                let hostile: Vec<PeerId> = (self.published.iter())
                    .chain(self.hostile.keys())
                    .cloned()
                    .collect();
                let joiners: Vec<PeerId> = self.hosts.keys().cloned().collect();
                for joiner in joiners {
                    for peer in &hostile {
                        self.hosts.get_mut(&joiner).unwrap().handle_peer(peer, now);
                    }
                    self.drain(&joiner);
                }
                self.schedule_in(Duration::from_millis(500), Event::Announce);
            }
        }
    }

    fn hostile_answer(&mut self, behaviour: Hostile, me: PeerId, to: PeerId, bytes: &[u8]) {
        let nonce = match Message::decode(bytes) {
            Ok(Message::Join(join)) => join.nonce,
            _ => return,
        };
        let answer = match behaviour {
            Hostile::Silent => return,
            Hostile::Garbage => {
                let mut junk = vec![0u8; 40];
                self.rng.fill_bytes(&mut junk);
                junk
            }
            Hostile::NoSession => {
                Message::Done(Done::rejected(nonce, RejectReason::NoSession)).encode()
            }
            Hostile::ClaimsExpired => {
                Message::Done(Done::rejected(nonce, RejectReason::Expired)).encode()
            }
        };
        self.schedule_in(
            self.latency,
            Event::Deliver {
                to,
                from: me,
                bytes: answer,
            },
        );
    }

    /// Carries out what `peer`'s host asks for.
    fn drain(&mut self, peer: &PeerId) {
        let now = self.now;
        while let Some(action) = self.hosts.get_mut(peer).unwrap().poll_action() {
            match action {
                Action::Send { peer: to, bytes } => {
                    if matches!(Message::decode(&bytes), Ok(Message::Challenge(_))) {
                        self.first_challenge
                            .entry(peer.clone())
                            .or_insert(now - self.start);
                    }
                    let event = Event::Deliver {
                        to,
                        from: peer.clone(),
                        bytes,
                    };
                    self.schedule_in(self.latency, event);
                }
                Action::Lookup { .. } => {
                    // The DHT answers with the running initiators after a round trip.
                    let found: Vec<PeerId> = self.published.iter().cloned().collect();
                    for initiator in found {
                        let host = self.hosts.get_mut(peer).unwrap();
                        host.handle_peer(&initiator, now + 2 * self.latency);
                    }
                }
                Action::Store(device) => {
                    // Every device here saves at once.
                    let host = self.hosts.get_mut(peer).unwrap();
                    let session = host.session().expect("a session asked to store");
                    host.handle_stored(session, &device.peer, true, now);
                }
                Action::Completed(device) => {
                    self.completed
                        .insert(peer.clone(), (now - self.start, device));
                }
                Action::Failed(reason) => {
                    self.failed.insert(peer.clone(), (now - self.start, reason));
                }
                Action::Confirm { .. } => panic!("these lab runs auto-accept"),
                Action::Publish { .. }
                | Action::Unpublish { .. }
                | Action::Progress(_)
                | Action::PrepareStore(_) => {}
            }
        }
    }

    fn initiator_footprint(&self, peer: &PeerId) -> usize {
        match self.hosts[peer].pairing() {
            Some(Pairing::Initiator(i)) => i.tracked_peers(),
            _ => 0,
        }
    }
}

fn auto_accept() -> Config {
    Config {
        auto_accept: true,
        ..Config::default()
    }
}

/// Issue 10, item 1. An attacker who knows the public discovery id sends Joins from fresh
/// identities at ten times the old eviction threshold (32 pending attempts) per round
/// trip, for the code's whole lifetime, and never proves anything. The honest joiner,
/// arriving half-way through, still pairs, and the initiator holds no more state at the
/// end of the flood than at its start.
#[test]
fn join_flood_from_fresh_identities_cannot_exhaust_pending_attempts() {
    let cfg = Config {
        code_ttl: Duration::from_secs(20),
        ..auto_accept()
    };
    let latency = Duration::from_millis(250);
    let round_trip = 2 * latency;
    let mut lab = Lab::new(cfg.clone(), latency);
    let alice = lab.add_host(
        real_device([1; 32], "alice"),
        Role::Initiator,
        Duration::ZERO,
    );
    let bob = lab.add_host(real_device([2; 32], "bob"), Role::Joiner, cfg.code_ttl / 2);
    // 320 Joins per round trip, in bursts of 32 every tenth of it.
    lab.flood(alice.clone(), 32, round_trip / 10, cfg.code_ttl);

    let mut footprints = Vec::new();
    let mut next_sample = Duration::from_secs(1);
    lab.run(
        cfg.code_ttl,
        |lab| {
            if lab.elapsed() >= next_sample {
                next_sample += Duration::from_secs(1);
                footprints.push(lab.initiator_footprint(&alice));
            }
        },
        |_| false,
    );
    let (at, on_bob) = lab
        .completed
        .get(&bob)
        .expect("bob pairs despite the flood");
    assert_eq!(on_bob.peer, alice);
    let (_, on_alice) = lab.completed.get(&alice).expect("alice pairs with bob");
    assert_eq!(on_alice.peer, bob);
    assert_eq!(on_alice.keys, on_bob.keys);
    assert!(*at < cfg.code_ttl);
    assert!(footprints.len() >= 9, "sampled through the flood");
    assert!(
        footprints.iter().all(|f| *f == footprints[0]),
        "the initiator's per-peer state stays flat under the flood: {footprints:?}"
    );
}

/// Issue 10, item 2. A hundred LAN peers that stay silent, answer garbage or say they hold
/// no session, all re-announcing themselves every half second, surround the joiner; the
/// real initiator starts only later. The joiner pairs within a second of the initiator
/// starting to answer.
#[test]
fn hostile_lan_peers_cannot_hold_the_joiners_slots() {
    let cfg = auto_accept();
    let mut lab = Lab::new(cfg.clone(), Duration::from_millis(20));
    for i in 0..100 {
        lab.add_hostile(match i % 10 {
            0 => Hostile::Garbage,
            1 => Hostile::NoSession,
            _ => Hostile::Silent,
        });
    }
    let bob = lab.add_host(real_device([2; 32], "bob"), Role::Joiner, Duration::ZERO);
    let answering = Duration::from_secs(5);
    let alice = lab.add_host(real_device([1; 32], "alice"), Role::Initiator, answering);
    lab.schedule(Duration::ZERO, Event::Announce);
    lab.run(
        Duration::from_secs(40),
        |_| {},
        |lab| lab.completed.len() == 2 || !lab.failed.is_empty(),
    );
    assert!(lab.failed.is_empty(), "{:?}", lab.failed);
    let (at, on_bob) = lab.completed.get(&bob).expect("bob pairs");
    assert_eq!(on_bob.peer, alice);
    assert!(
        *at <= answering + Duration::from_secs(1),
        "bob paired at {at:?}, alice answers from {answering:?} (first Challenge at {:?})",
        lab.first_challenge.get(&alice)
    );
}

/// Issue 10, item 2. A LAN peer that was never given the code answers the joiner's Join
/// with `Done{Rejected(Expired)}`, echoing its nonce. That claim is unauthenticated: the
/// search goes on, and the joiner pairs with the real initiator who starts later.
#[test]
fn an_unauthenticated_expired_claim_does_not_end_the_search() {
    let cfg = auto_accept();
    let mut lab = Lab::new(cfg.clone(), Duration::from_millis(20));
    lab.add_hostile(Hostile::ClaimsExpired);
    let bob = lab.add_host(real_device([2; 32], "bob"), Role::Joiner, Duration::ZERO);
    let alice = lab.add_host(
        real_device([1; 32], "alice"),
        Role::Initiator,
        Duration::from_secs(8),
    );
    lab.schedule(Duration::ZERO, Event::Announce);
    lab.run(
        Duration::from_secs(40),
        |_| {},
        |lab| lab.completed.len() == 2 || !lab.failed.is_empty(),
    );
    assert!(lab.failed.is_empty(), "{:?}", lab.failed);
    let (_, on_bob) = lab.completed.get(&bob).expect("bob pairs");
    assert_eq!(on_bob.peer, alice);
}

/// One side of a conversation for `converse`: a session and what its user was shown.
struct Party {
    peer: PeerId,
    pairing: Pairing,
    /// The verification strings of every confirmation this party's user was asked.
    shown: Vec<Verification>,
}

impl Party {
    fn new(role: Role, local: LocalDevice, code: &Code, now: Instant, seed: u64) -> Party {
        let mut rng = stream_rng(seed, Stream::Setup);
        let cfg = Config::default(); // both users are asked
        let pairing = match role {
            Role::Initiator => Pairing::initiator(cfg, local.clone(), code, now, &mut rng),
            Role::Joiner => Pairing::joiner(cfg, local.clone(), code, now, &mut rng),
        };
        Party {
            peer: local.peer,
            pairing,
            shown: Vec::new(),
        }
    }
}

/// Runs the parties at one instant until nobody has anything to say, every user saying
/// yes. A message goes to the party with that PeerId whose role takes it (Join and Prove
/// to initiators, Challenge and Done to joiners), so one device may run both halves of a
/// relay under one identity.
fn converse(parties: &mut [Party], now: Instant) {
    let mut wire: Vec<(PeerId, PeerId, Vec<u8>)> = Vec::new();
    for _ in 0..10_000 {
        for party in parties.iter_mut() {
            while let Some(action) = party.pairing.poll_action() {
                match action {
                    Action::Send { peer, bytes } => wire.push((party.peer.clone(), peer, bytes)),
                    Action::Confirm {
                        peer, verification, ..
                    } => {
                        party.shown.push(verification);
                        party.pairing.handle_confirm(&peer, true, now);
                    }
                    Action::Store(device) => party.pairing.handle_stored(&device.peer, true, now),
                    _ => {}
                }
            }
        }
        let Some((from, to, bytes)) = (!wire.is_empty()).then(|| wire.remove(0)) else {
            return;
        };
        let to_initiator = matches!(
            Message::decode(&bytes),
            Ok(Message::Join(_) | Message::Prove(_))
        );
        if let Some(party) = parties
            .iter_mut()
            .find(|p| p.peer == to && p.pairing.is_initiator() == to_initiator)
        {
            party.pairing.handle_message(&from, &bytes, now);
        }
    }
    panic!("the conversation never ended");
}

/// Issue 10, item 3. Honest devices: both users are shown the same verification string.
#[test]
fn honest_devices_show_the_same_verification_string() {
    let mut rng = stream_rng(3, Stream::Setup);
    let code = Code::generate(&mut rng);
    let now = Instant::now();
    let (alice, bob) = (real_device([1; 32], "alice"), real_device([2; 32], "bob"));
    let mut parties = [
        Party::new(Role::Initiator, alice.clone(), &code, now, 1),
        Party::new(Role::Joiner, bob, &code, now, 2),
    ];
    parties[1].pairing.handle_peer(&alice.peer, now);
    converse(&mut parties, now);
    let [a, b] = &parties;
    assert_eq!(a.shown.len(), 1, "alice was asked once");
    assert_eq!(b.shown.len(), 1, "bob was asked once");
    assert_eq!(a.shown, b.shown);
}

/// Issue 10, item 3. Mallory overheard the 12 words. He runs an initiator with the code
/// under Alice's name for Bob to find, and a joiner with the code under Bob's name that
/// finds Alice: a man in the middle who knows the code. Every MAC verifies; the two
/// users are shown different verification strings, which is how they notice.
#[test]
fn a_man_in_the_middle_who_knows_the_code_shows_different_strings() {
    let mut rng = stream_rng(3, Stream::Setup);
    let code = Code::generate(&mut rng);
    let now = Instant::now();
    let (alice, bob) = (real_device([1; 32], "alice"), real_device([2; 32], "bob"));
    let mallory = real_device([3; 32], "alice").peer;
    let as_alice = LocalDevice {
        peer: mallory.clone(),
        info: DeviceInfo::new("alice").unwrap(),
    };
    let as_bob = LocalDevice {
        peer: mallory.clone(),
        info: DeviceInfo::new("bob").unwrap(),
    };
    let mut parties = [
        Party::new(Role::Initiator, alice.clone(), &code, now, 1),
        Party::new(Role::Joiner, bob, &code, now, 2),
        Party::new(Role::Initiator, as_alice, &code, now, 3),
        Party::new(Role::Joiner, as_bob, &code, now, 4),
    ];
    // Bob finds only Mallory; Mallory's joiner finds Alice.
    parties[1].pairing.handle_peer(&mallory, now);
    parties[3].pairing.handle_peer(&alice.peer, now);
    converse(&mut parties, now);
    let [on_alice, on_bob, ..] = &parties;
    assert_eq!(on_alice.shown.len(), 1, "alice was asked about 'bob'");
    assert_eq!(on_bob.shown.len(), 1, "bob was asked about 'alice'");
    assert_ne!(
        on_alice.shown, on_bob.shown,
        "the two screens must differ when someone is in the middle"
    );
    // And each half of the relay agrees with the honest device it talks to: the string
    // depends on the handshake, not on who runs it.
    assert_eq!(parties[2].shown, on_bob.shown);
}
