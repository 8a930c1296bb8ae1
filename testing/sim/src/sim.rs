//! The discrete-event simulator: N peers, a virtual clock and a lossy network, all driven by
//! one seed. Every event it processes is one step; after each step the caller may inspect
//! the whole world (that is where the invariants are checked).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::{Duration, Instant};

use paircode_core::messages::Message;
use paircode_core::JoinerState;
use paircode_core::{Action, DiscoveryId, LocalDevice, PairingHost, PeerId, Role, Timer};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::attacker::{Attacker, Ctx, Out};
use crate::clock::VirtualClock;
use crate::net::{Captured, Links, NetConfig};
use crate::node::{
    Brain, ConfirmPolicy, Label, Node, NodeId, SessionNode, SessionSpec, SessionState, StorePolicy,
};
use crate::random::{duration_between, stream_rng, Stream};
use crate::record::{Fate, LogEntry, NetRecord, Recorded};

/// A run that needs more steps than this is spinning, not simulating.
const MAX_STEPS: u64 = 5_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Start,
    Timer,
    Deliver,
    Discover,
    /// A node learned that its send was not delivered.
    Unreachable,
    /// A node's DHT lookup reached no DHT peer.
    LookupFailed,
    Confirm,
    Store,
    Tick,
}

/// One message handed to a peer in this step, with the recipient's state around it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub from: NodeId,
    pub msg: u64,
    pub copy: u8,
    /// This message (not merely equal bytes) was delivered before: the network duplicated it.
    pub network_duplicate: bool,
    /// The message kind, or `None` if it does not decode.
    pub kind: Option<&'static str>,
    pub before: Option<SessionState>,
    pub after: Option<SessionState>,
    pub timeout_before: Option<Instant>,
    pub timeout_after: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct StepReport {
    pub at: Duration,
    pub kind: StepKind,
    pub node: NodeId,
    /// Nodes that logged actions in this step, with the index of their first new entry.
    pub log_marks: Vec<(NodeId, usize)>,
    /// Index of the first message this step put on the wire.
    pub tap_mark: usize,
    pub delivery: Option<Delivery>,
    /// After `handle_timeout(now)` the session still wanted this timer at or before `now`:
    /// a driver following `poll_timeout` would spin.
    pub stuck_timer: Option<Timer>,
}

enum Event {
    Timer {
        node: NodeId,
        at: Instant,
    },
    Start {
        node: NodeId,
    },
    Deliver {
        msg: u64,
        copy: u8,
        from: NodeId,
        to: NodeId,
        bytes: Vec<u8>,
    },
    Discover {
        node: NodeId,
        peer: PeerId,
    },
    /// `node`'s send to `peer` could not be delivered (its connection was refused).
    Unreachable {
        node: NodeId,
        peer: PeerId,
    },
    /// `node`'s DHT lookup reached no DHT peer.
    LookupFailed {
        node: NodeId,
    },
    Confirm {
        node: NodeId,
        peer: PeerId,
        accept: bool,
    },
    Stored {
        node: NodeId,
        peer: PeerId,
        saved: bool,
    },
    Tick {
        node: NodeId,
    },
}

/// Timers sort first among events of the same instant, so that any input a session sees
/// arrives with no timeout already due: what the input does is then the input's doing.
const CLASS_TIMER: u8 = 0;
const CLASS_OTHER: u8 = 1;

struct Scheduled {
    at: Duration,
    class: u8,
    seq: u64,
    event: Event,
}

impl Scheduled {
    fn key(&self) -> (Duration, u8, u64) {
        (self.at, self.class, self.seq)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

pub struct Simulator {
    clock: VirtualClock,
    net: NetConfig,
    rng: ChaCha20Rng,
    nodes: Vec<Node>,
    by_peer: BTreeMap<PeerId, NodeId>,
    links: Links,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    next_msg: u64,
    delivered: BTreeSet<u64>,
    dht: BTreeMap<DiscoveryId, BTreeMap<NodeId, Instant>>,
    tap: Vec<Captured>,
    net_log: Vec<NetRecord>,
    steps: u64,
    marks: Vec<(NodeId, usize)>,
    /// Whether a starting joiner hears of the devices on its LAN (mDNS).
    lan_discovery: bool,
    /// Lookups before this offset reach no DHT peer.
    dht_unreachable_until: Duration,
}

impl Simulator {
    pub fn new(base: Instant, net: NetConfig, seed: u64) -> Self {
        Simulator {
            clock: VirtualClock::new(base),
            net,
            rng: stream_rng(seed, Stream::Network),
            nodes: Vec::new(),
            by_peer: BTreeMap::new(),
            links: Links::default(),
            queue: BinaryHeap::new(),
            seq: 0,
            next_msg: 0,
            delivered: BTreeSet::new(),
            dht: BTreeMap::new(),
            tap: Vec::new(),
            net_log: Vec::new(),
            steps: 0,
            marks: Vec::new(),
            lan_discovery: true,
            dht_unreachable_until: Duration::ZERO,
        }
    }

    /// Adds a peer. A session starts at its `start_at`, an attacker at once.
    pub fn add_node(&mut self, local: LocalDevice, label: Label, brain: Brain) -> NodeId {
        let id = self.nodes.len();
        assert!(
            self.by_peer.insert(local.peer.clone(), id).is_none(),
            "two simulated peers share a PeerId"
        );
        let start = match &brain {
            Brain::Session(s) => Some(s.spec.start_at),
            Brain::Attacker(_) => Some(self.clock.elapsed()),
            Brain::Idle => None,
        };
        self.nodes.push(Node {
            host: PairingHost::new(local.clone()),
            local,
            label,
            brain,
            log: Vec::new(),
            timer: None,
        });
        if let Some(at) = start {
            self.schedule(at, CLASS_OTHER, Event::Start { node: id });
        }
        id
    }

    /// No route between `a` and `b` from now on.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.links.cut(a, b);
    }

    /// `node` refuses every connection until `until` (virtual time since the start): a
    /// sender learns it one round trip later, as a dial reset by a full handshake queue.
    pub fn refuse_until(&mut self, node: NodeId, until: Duration) {
        self.links.refuse_until(node, until);
    }

    /// No mDNS from now on: a joiner finds others through DHT lookups only.
    pub fn without_lan_discovery(&mut self) {
        self.lan_discovery = false;
    }

    /// DHT lookups made before `until` (virtual time since the start) reach no DHT peer
    /// (every dial refused, as during a connection flood): each reports so after the
    /// lookup latency and finds nothing.
    pub fn dht_unreachable_until(&mut self, until: Duration) {
        self.dht_unreachable_until = until;
    }

    /// `node` reaches only `peers` from now on (and only they reach it).
    pub fn confine(&mut self, node: NodeId, peers: impl IntoIterator<Item = NodeId>) {
        self.links.confine(node, peers);
    }

    /// Hands `bytes` from `from` to `to` after `delay`, bypassing loss and duplication.
    pub fn inject(&mut self, from: NodeId, to: NodeId, bytes: Vec<u8>, delay: Duration) {
        let msg = self.new_msg(from, &self.nodes[to].local.peer.clone(), &bytes);
        let at = self.clock.elapsed() + delay;
        self.net_log.push(NetRecord {
            at: self.clock.elapsed(),
            msg,
            fate: Fate::InFlight {
                arrives: at,
                copy: 0,
            },
        });
        let event = Event::Deliver {
            msg,
            copy: 0,
            from,
            to,
            bytes,
        };
        self.schedule(at, CLASS_OTHER, event);
    }

    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn node_of(&self, peer: &PeerId) -> Option<NodeId> {
        self.by_peer.get(peer).copied()
    }

    pub fn tap(&self) -> &[Captured] {
        &self.tap
    }

    pub fn net_log(&self) -> &[NetRecord] {
        &self.net_log
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Offset of the next event, if any.
    pub fn next_event_at(&self) -> Option<Duration> {
        self.queue.peek().map(|Reverse(s)| s.at)
    }

    /// Processes events up to `limit`, calling `check` after each step.
    pub fn run(&mut self, limit: Duration, mut check: impl FnMut(&Simulator, &StepReport)) {
        self.run_while(limit, |sim, step| {
            check(sim, step);
            true
        });
    }

    /// Like `run`, but stops as soon as `go_on` returns false.
    pub fn run_while(
        &mut self,
        limit: Duration,
        mut go_on: impl FnMut(&Simulator, &StepReport) -> bool,
    ) {
        while let Some(report) = self.step_until(limit) {
            if !go_on(self, &report) {
                return;
            }
        }
    }

    /// Processes the next event if it is due no later than `limit`.
    pub fn step_until(&mut self, limit: Duration) -> Option<StepReport> {
        loop {
            if self.queue.peek()?.0.at > limit {
                return None;
            }
            let Reverse(next) = self.queue.pop()?;
            if let Event::Timer { node, at } = next.event {
                if self.nodes[node].timer != Some(at) {
                    continue; // superseded by a later poll_timeout
                }
            }
            self.steps += 1;
            assert!(self.steps <= MAX_STEPS, "simulation does not settle");
            self.clock.advance_to(next.at);
            return Some(self.process(next.event));
        }
    }

    fn process(&mut self, event: Event) -> StepReport {
        self.marks.clear();
        let tap_mark = self.tap.len();
        let mut delivery = None;
        let mut stuck_timer = None;
        let (kind, node) = match event {
            Event::Timer { node, .. } => {
                self.nodes[node].timer = None;
                let now = self.now();
                let host = &mut self.nodes[node].host;
                host.handle_timeout(now);
                stuck_timer = host
                    .next_timer()
                    .filter(|(at, _)| *at <= now)
                    .map(|(_, timer)| timer);
                self.settle(node);
                (StepKind::Timer, node)
            }
            Event::Start { node } => {
                self.start(node);
                (StepKind::Start, node)
            }
            Event::Deliver {
                msg,
                copy,
                from,
                to,
                bytes,
            } => {
                delivery = Some(self.deliver(msg, copy, from, to, &bytes));
                (StepKind::Deliver, to)
            }
            Event::Discover { node, peer } => {
                let now = self.now();
                self.nodes[node].host.handle_peer(&peer, now);
                self.settle(node);
                (StepKind::Discover, node)
            }
            Event::Unreachable { node, peer } => {
                let now = self.now();
                self.nodes[node].host.handle_unreachable(&peer, now);
                self.settle(node);
                (StepKind::Unreachable, node)
            }
            Event::LookupFailed { node } => {
                let now = self.now();
                self.nodes[node].host.handle_lookup_failed(now);
                self.settle(node);
                (StepKind::LookupFailed, node)
            }
            Event::Confirm { node, peer, accept } => {
                let now = self.now();
                let session = self.nodes[node].session().and_then(|s| s.session);
                if let Some(session) = session {
                    self.nodes[node]
                        .host
                        .handle_confirm(session, &peer, accept, now);
                }
                self.settle(node);
                (StepKind::Confirm, node)
            }
            Event::Stored { node, peer, saved } => {
                let now = self.now();
                let session = self.nodes[node].session().and_then(|s| s.session);
                if let Some(session) = session {
                    self.nodes[node]
                        .host
                        .handle_stored(session, &peer, saved, now);
                }
                self.settle(node);
                (StepKind::Store, node)
            }
            Event::Tick { node } => {
                self.with_attacker(node, |a, ctx| a.on_tick(ctx));
                (StepKind::Tick, node)
            }
        };
        StepReport {
            at: self.clock.elapsed(),
            kind,
            node,
            log_marks: self.marks.clone(),
            tap_mark,
            delivery,
            stuck_timer,
        }
    }

    fn start(&mut self, id: NodeId) {
        let now = self.now();
        let Node { brain, host, .. } = &mut self.nodes[id];
        match brain {
            Brain::Session(s) => {
                let spec = &s.spec;
                let mut rng = ChaCha20Rng::from_seed(spec.seed);
                let (mut cfg, code) = (spec.cfg.clone(), &spec.code);
                // A user who says yes at once is one who is never asked.
                cfg.auto_accept |= spec.policy == ConfirmPolicy::AutoAccept;
                let started = host.start(spec.role, cfg, code, now, &mut rng);
                let joiner = spec.role == Role::Joiner;
                s.session = Some(started.expect("a simulated device runs one session"));
                s.started_at = Some(now);
                self.settle(id);
                if joiner && self.lan_discovery {
                    self.discover_lan(id);
                }
            }
            Brain::Attacker(_) => self.with_attacker(id, |a, ctx| a.on_start(ctx)),
            Brain::Idle => {}
        }
    }

    /// mDNS: every device reachable from `id` is reported to it, each after its own delay.
    fn discover_lan(&mut self, id: NodeId) {
        for other in 0..self.nodes.len() {
            if other == id || !self.links.connected(id, other) {
                continue;
            }
            let (lo, hi) = self.net.discovery_delay;
            let delay = duration_between(&mut self.rng, lo, hi);
            let peer = self.nodes[other].local.peer.clone();
            let at = self.clock.elapsed() + delay;
            self.schedule(at, CLASS_OTHER, Event::Discover { node: id, peer });
        }
    }

    fn deliver(&mut self, msg: u64, copy: u8, from: NodeId, to: NodeId, bytes: &[u8]) -> Delivery {
        let now = self.now();
        self.net_log.push(NetRecord {
            at: self.clock.elapsed(),
            msg,
            fate: Fate::Delivered { copy },
        });
        let network_duplicate = !self.delivered.insert(msg);
        let kind = Message::decode(bytes).ok().map(|m| m.kind());
        let from_peer = self.nodes[from].local.peer.clone();
        let mut report = Delivery {
            from,
            msg,
            copy,
            network_duplicate,
            kind,
            before: None,
            after: None,
            timeout_before: None,
            timeout_after: None,
        };
        if matches!(self.nodes[to].brain, Brain::Attacker(_)) {
            self.with_attacker(to, |a, ctx| a.on_message(ctx, &from_peer, bytes));
            return report;
        }
        report.before = self.nodes[to].state();
        report.timeout_before = self.nodes[to].host.poll_timeout();
        self.nodes[to].host.handle_message(&from_peer, bytes, now);
        self.settle(to);
        let node = &self.nodes[to];
        // A joiner's host lets go of it once it finished: that is the state it ended in.
        let retired = report
            .before
            .map(|_| SessionState::Joiner(JoinerState::Finished));
        report.after = node.state().or(retired);
        report.timeout_after = node.host.poll_timeout();
        if report.before.is_none() {
            report.timeout_before = None;
            report.timeout_after = None;
        }
        report
    }

    /// Carries out every action the session has queued, then re-arms its timer.
    fn settle(&mut self, id: NodeId) {
        while let Some(action) = self.nodes[id].host.poll_action() {
            let recorded = Recorded::from_action(&action, &self.clock);
            self.record(id, recorded);
            self.apply(id, action);
        }
        let Some(next) = self.nodes[id].host.poll_timeout() else {
            self.nodes[id].timer = None;
            return;
        };
        if self.nodes[id].timer != Some(next) {
            self.nodes[id].timer = Some(next);
            let at = self.clock.offset_of(next).max(self.clock.elapsed());
            self.schedule(at, CLASS_TIMER, Event::Timer { node: id, at: next });
        }
    }

    fn apply(&mut self, id: NodeId, action: Action) {
        let now = self.now();
        match action {
            Action::Send { peer, bytes } => self.transmit(id, &peer, bytes),
            Action::Publish { key, until } => {
                self.dht.entry(key).or_default().insert(id, until);
            }
            Action::Unpublish { key } => {
                if let Some(providers) = self.dht.get_mut(&key) {
                    providers.remove(&id);
                }
            }
            Action::Lookup { .. } if self.clock.elapsed() < self.dht_unreachable_until => {
                let (lo, hi) = self.net.lookup_latency;
                let at = self.clock.elapsed() + duration_between(&mut self.rng, lo, hi);
                self.schedule(at, CLASS_OTHER, Event::LookupFailed { node: id });
            }
            Action::Lookup { key } => {
                let providers: Vec<NodeId> = self
                    .dht
                    .get(&key)
                    .map(|p| {
                        p.iter()
                            .filter(|(n, until)| **n != id && **until > now)
                            .map(|(n, _)| *n)
                            .collect()
                    })
                    .unwrap_or_default();
                for provider in providers {
                    let (lo, hi) = self.net.lookup_latency;
                    let at = self.clock.elapsed() + duration_between(&mut self.rng, lo, hi);
                    let peer = self.nodes[provider].local.peer.clone();
                    self.schedule(at, CLASS_OTHER, Event::Discover { node: id, peer });
                }
            }
            Action::Confirm { peer, .. } => {
                let policy = match &self.nodes[id].brain {
                    Brain::Session(s) => s.spec.policy,
                    _ => ConfirmPolicy::Never,
                };
                let answer = match policy {
                    ConfirmPolicy::Accept { after } => Some((after, true)),
                    ConfirmPolicy::Reject { after } => Some((after, false)),
                    ConfirmPolicy::AutoAccept | ConfirmPolicy::Never => None,
                };
                if let Some((after, accept)) = answer {
                    let at = self.clock.elapsed() + after;
                    self.schedule(
                        at,
                        CLASS_OTHER,
                        Event::Confirm {
                            node: id,
                            peer,
                            accept,
                        },
                    );
                }
            }
            // A simulated store is a moment in time: nothing to prepare.
            Action::PrepareStore(_) => {}
            Action::Store(device) => {
                let policy = match &self.nodes[id].brain {
                    Brain::Session(s) => s.spec.store,
                    _ => StorePolicy::Hangs,
                };
                let answer = match policy {
                    StorePolicy::Saves { after } => Some((after, true)),
                    StorePolicy::Fails { after } => Some((after, false)),
                    StorePolicy::Hangs => None,
                };
                if let Some((after, saved)) = answer {
                    let at = self.clock.elapsed() + after;
                    let peer = device.peer.clone();
                    self.schedule(
                        at,
                        CLASS_OTHER,
                        Event::Stored {
                            node: id,
                            peer,
                            saved,
                        },
                    );
                }
            }
            Action::Progress(_) | Action::Completed(_) | Action::Failed(_) => {}
        }
    }

    fn with_attacker(&mut self, id: NodeId, f: impl FnOnce(&mut Attacker, &mut Ctx<'_>)) {
        let now = self.now();
        let Simulator { nodes, tap, .. } = self;
        let node = &mut nodes[id];
        let Brain::Attacker(attacker) = &mut node.brain else {
            return;
        };
        let mut ctx = Ctx::new(now, &node.local.peer, tap);
        f(attacker, &mut ctx);
        for out in ctx.into_out() {
            match out {
                Out::Send { to, bytes } => {
                    self.record(
                        id,
                        Recorded::Send {
                            to: to.clone(),
                            bytes: bytes.clone(),
                        },
                    );
                    self.transmit(id, &to, bytes);
                }
                Out::Publish { key, until } => {
                    self.dht.entry(key).or_default().insert(id, until);
                }
                Out::WakeAt(at) => {
                    let at = self.clock.offset_of(at).max(self.clock.elapsed());
                    self.schedule(at, CLASS_OTHER, Event::Tick { node: id });
                }
            }
        }
    }

    fn record(&mut self, id: NodeId, action: Recorded) {
        if !self.marks.iter().any(|(n, _)| *n == id) {
            self.marks.push((id, self.nodes[id].log.len()));
        }
        self.nodes[id].log.push(LogEntry {
            at: self.clock.elapsed(),
            action,
        });
    }

    fn new_msg(&mut self, from: NodeId, to: &PeerId, bytes: &[u8]) -> u64 {
        let msg = self.next_msg;
        self.next_msg += 1;
        self.tap.push(Captured {
            at: self.clock.elapsed(),
            from: self.nodes[from].local.peer.clone(),
            to: to.clone(),
            bytes: bytes.to_vec(),
        });
        msg
    }

    fn transmit(&mut self, from: NodeId, to: &PeerId, bytes: Vec<u8>) {
        let msg = self.new_msg(from, to, &bytes);
        let sent = self.clock.elapsed();
        let target = self
            .by_peer
            .get(to)
            .copied()
            .filter(|t| self.links.connected(from, *t));
        let Some(target) = target else {
            self.net_log.push(NetRecord {
                at: sent,
                msg,
                fate: Fate::Unreachable,
            });
            return;
        };
        if self.links.refusing(target, sent) {
            self.net_log.push(NetRecord {
                at: sent,
                msg,
                fate: Fate::Refused,
            });
            let round_trip =
                2 * duration_between(&mut self.rng, self.net.latency.0, self.net.latency.1);
            let event = Event::Unreachable {
                node: from,
                peer: to.clone(),
            };
            self.schedule(sent + round_trip, CLASS_OTHER, event);
            return;
        }
        let delays = self.net.draw_copies(&mut self.rng);
        if delays.is_empty() {
            self.net_log.push(NetRecord {
                at: sent,
                msg,
                fate: Fate::Lost,
            });
        }
        for (copy, delay) in delays.into_iter().enumerate() {
            let copy = copy as u8;
            let arrives = sent + delay;
            self.net_log.push(NetRecord {
                at: sent,
                msg,
                fate: Fate::InFlight { arrives, copy },
            });
            let event = Event::Deliver {
                msg,
                copy,
                from,
                to: target,
                bytes: bytes.clone(),
            };
            self.schedule(arrives, CLASS_OTHER, event);
        }
    }

    fn schedule(&mut self, at: Duration, class: u8, event: Event) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            class,
            seq,
            event,
        }));
    }
}

/// Makes a session node from its spec; the session itself starts at `spec.start_at`.
pub fn session_brain(spec: SessionSpec) -> Brain {
    Brain::Session(Box::new(SessionNode {
        spec,
        session: None,
        started_at: None,
    }))
}
