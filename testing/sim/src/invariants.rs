//! The invariants of docs/PROTOCOL.md §6, checked after every simulation step.
//!
//! 1. Never completed on one side with keys different from the other side's.
//! 2. Never completed without knowing the code.
//! 3. Each side completes with the other's real PeerId and device info.
//! 4. At most one completed pairing per code; nothing completes after expiry.
//! 5. Malformed, oversized, duplicated or out-of-order input never panics and never
//!    advances the state.
//! 6. A pairing is acknowledged only once it is stored: an initiator sends `Done{Accepted}`
//!    only in the step where its embedder reported the pairing saved, or later to repeat
//!    it (after its `Completed`). With 4, a joiner completes only if the initiator did, so
//!    no run ends with a pairing stored on the joiner's side alone.
//!
//! "Knowing the code" is decided from the simulator's ground truth: a peer knows it when it
//! runs a session created with that very code. A completion is legitimate only between an
//! initiator and a joiner that both hold the same code.

use std::fmt;
use std::time::Duration;

use paircode_core::keys::CodeKeys;
use paircode_core::messages::{Done, Message, Outcome, RejectReason};
use paircode_core::{Code, DeviceInfo, PairedDevice, Pairing, PeerId, Progress, Role};

use crate::node::{Label, Node, NodeId, Phase, StorePolicy};
use crate::record::{LogEntry, Recorded};
use crate::sim::{Simulator, StepKind, StepReport};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The docs/PROTOCOL.md §6 invariant broken, or 0 for a property of the §5 driver contract.
    pub invariant: u8,
    pub at: Duration,
    pub node: NodeId,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant {} broken at {:?} on node {}: {}",
            self.invariant, self.at, self.node, self.detail
        )
    }
}

#[derive(Debug, Clone)]
struct Completion {
    node: NodeId,
    at: Duration,
    device: PairedDevice,
}

struct Secret {
    what: String,
    bytes: Vec<u8>,
}

/// How much of each kind of hostile input reached a live session, so that tests can show
/// the checks were not vacuous.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exercised {
    pub malformed: u64,
    pub network_duplicates: u64,
    pub out_of_order: u64,
}

/// Incremental checker: feed it every step of a run, in order.
#[derive(Default)]
pub struct Invariants {
    pub exercised: Exercised,
    completions: Vec<Completion>,
    terminal: Vec<Option<Duration>>,
    secrets: Vec<Secret>,
    /// Sessions whose code secrets are already in `secrets`.
    sessions_seen: Vec<bool>,
    tap_scanned: usize,
    /// First four bytes of each secret, to skip most positions with one comparison each.
    prefixes: Vec<u32>,
    steps: u64,
}

/// Shows what was checked, never the secrets it watches for.
impl fmt::Debug for Invariants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invariants")
            .field("steps", &self.steps)
            .field("completions", &self.completions.len())
            .field("exercised", &self.exercised)
            .finish_non_exhaustive()
    }
}

impl Invariants {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn steps_checked(&self) -> u64 {
        self.steps
    }

    pub fn check(&mut self, sim: &Simulator, step: &StepReport) -> Result<(), Violation> {
        self.steps += 1;
        let nodes = sim.nodes();
        self.terminal.resize(nodes.len(), None);
        self.sessions_seen.resize(nodes.len(), false);
        let fail = |invariant: u8, node: NodeId, detail: String| Violation {
            invariant,
            at: step.at,
            node,
            detail,
        };
        if let Some(timer) = step.stuck_timer {
            return Err(fail(
                0,
                step.node,
                format!("poll_timeout() ({timer:?}) is still due right after handle_timeout(now)"),
            ));
        }
        self.learn_code_secrets(nodes);
        self.check_delivery(nodes, step)
            .map_err(|e| fail(5, step.node, e))?;
        for &(id, start) in &step.log_marks {
            for entry in &nodes[id].log[start..] {
                self.check_action(sim, id, entry)
                    .map_err(|(inv, e)| fail(inv, id, e))?;
            }
            check_acknowledged_after_store(&nodes[id], id, start, step)
                .map_err(|e| fail(6, id, e))?;
        }
        self.check_wire(sim).map_err(|e| fail(2, step.node, e))
    }

    /// Input the state machine must shrug off: it may answer, but not move.
    fn check_delivery(&mut self, nodes: &[Node], step: &StepReport) -> Result<(), String> {
        let Some(d) = &step.delivery else {
            return Ok(());
        };
        let (Some(before), Some(after)) = (d.before, d.after) else {
            return Ok(());
        };
        let to = &nodes[step.node];
        let new = new_entries(to, step);
        let moved = |what: &str| {
            format!(
                "{what} input from node {} moved the session from {before:?} to {after:?}",
                d.from
            )
        };
        let forbidden = new.iter().find(|e| {
            matches!(
                e.action,
                Recorded::Completed(_)
                    | Recorded::Failed(_)
                    | Recorded::Confirm { .. }
                    | Recorded::Progress(Progress::Verified { .. })
            )
        });
        match d.kind {
            None => {
                self.exercised.malformed += 1;
                if before != after {
                    return Err(moved("malformed"));
                }
                if let Some(e) = forbidden {
                    return Err(format!("malformed input led to {:?}", e.action));
                }
                if matches!(before.phase(), Phase::Initiator(_))
                    && d.timeout_before != d.timeout_after
                {
                    return Err("malformed input changed the initiator's timers".into());
                }
            }
            Some(kind) => {
                let wrong_direction = match before.phase() {
                    Phase::Initiator(_) => kind == "Challenge" || kind == "Done",
                    Phase::Joiner(_) => kind == "Join" || kind == "Prove",
                };
                if wrong_direction {
                    self.exercised.out_of_order += 1;
                    if before != after || d.timeout_before != d.timeout_after {
                        return Err(moved(&format!("out-of-order {kind}")));
                    }
                    // The one answer allowed: a joiner tells another joiner at once that it
                    // holds no session, so that one moves on.
                    let answer_allowed =
                        kind == "Join" && matches!(before.phase(), Phase::Joiner(_));
                    if let Some(e) = new
                        .iter()
                        .find(|e| !(answer_allowed && is_no_session_answer(&e.action)))
                    {
                        return Err(format!("out-of-order {kind} led to {:?}", e.action));
                    }
                }
            }
        }
        if d.network_duplicate {
            self.exercised.network_duplicates += 1;
            if before.phase() != after.phase() {
                return Err(moved(&format!(
                    "network duplicate of message {} ({:?})",
                    d.msg, d.kind
                )));
            }
            if let Some(e) = forbidden {
                return Err(format!("a network duplicate led to {:?}", e.action));
            }
        }
        Ok(())
    }

    fn check_action(
        &mut self,
        sim: &Simulator,
        id: NodeId,
        entry: &LogEntry,
    ) -> Result<(), (u8, String)> {
        let nodes = sim.nodes();
        if let Some(ended) = self.terminal[id] {
            if !matches!(entry.action, Recorded::Send { .. }) {
                return Err((
                    4,
                    format!("{:?} after the session ended at {ended:?}", entry.action),
                ));
            }
        }
        match &entry.action {
            Recorded::Completed(device) => {
                self.terminal[id] = Some(entry.at);
                self.check_completion(sim, id, entry.at, device)?;
            }
            Recorded::Failed(_) => self.terminal[id] = Some(entry.at),
            Recorded::Confirm { peer, info, .. } => {
                knows_same_code(nodes, id, peer, info).map_err(|(inv, e)| {
                    (inv, format!("asked the user to confirm {peer:?}, {e}"))
                })?;
                if let Some(expiry) = initiator_expiry(sim, id) {
                    if entry.at >= expiry {
                        return Err((
                            4,
                            format!(
                                "asked to confirm at {:?}, after expiry at {expiry:?}",
                                entry.at
                            ),
                        ));
                    }
                }
            }
            Recorded::Progress(Progress::Verified { peer, info }) => {
                knows_same_code(nodes, id, peer, info)
                    .map_err(|(inv, e)| (inv, format!("verified {peer:?}, {e}")))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_completion(
        &mut self,
        sim: &Simulator,
        id: NodeId,
        at: Duration,
        device: &PairedDevice,
    ) -> Result<(), (u8, String)> {
        let nodes = sim.nodes();
        let me = &nodes[id];
        let (my_role, my_code) =
            session_of(me).ok_or((0, "a node without a session completed".to_string()))?;
        if device.role != my_role {
            return Err((
                3,
                format!("completed as {:?} but plays {my_role:?}", device.role),
            ));
        }
        if me.label == Label::Adversary {
            return Err((2, "an adversary's session completed".into()));
        }
        knows_same_code(nodes, id, &device.peer, &device.info)
            .map_err(|(inv, e)| (inv, format!("completed with {:?}, {e}", device.peer)))?;
        let other = sim
            .node_of(&device.peer)
            .expect("checked by knows_same_code");
        let same_code: Vec<&Completion> = self
            .completions
            .iter()
            .filter(|c| session_of(&nodes[c.node]).is_some_and(|(_, code)| code == my_code))
            .collect();
        for c in &same_code {
            let role = session_of(&nodes[c.node]).map(|(r, _)| r);
            if role == Some(my_role) {
                return Err((
                    4,
                    format!(
                        "second {my_role:?} completion for one code (node {} completed first)",
                        c.node
                    ),
                ));
            }
            if c.node != other {
                return Err((4, format!("completed with node {other} while node {} already completed with this code", c.node)));
            }
        }
        let partner = same_code.iter().find(|c| c.node == other);
        if let Some(p) = partner {
            if p.device.peer != me.local.peer {
                return Err((
                    1,
                    format!(
                        "the other side completed with {:?}, not with us",
                        p.device.peer
                    ),
                ));
            }
            if p.device.keys != device.keys {
                return Err((1, "keys differ from the other side's".into()));
            }
        }
        match my_role {
            Role::Initiator => {
                let expiry = initiator_expiry(sim, id).expect("an initiator has an expiry");
                if at >= expiry {
                    return Err((
                        4,
                        format!("initiator completed at {at:?}, code expired at {expiry:?}"),
                    ));
                }
            }
            Role::Joiner => {
                // Alice is the one who knows the expiry: Bob may only complete because she
                // accepted, in time.
                if partner.is_none() {
                    return Err((
                        4,
                        "joiner completed although the initiator never did".into(),
                    ));
                }
            }
        }
        for (what, key) in [
            ("pairing secret", &device.keys.pairing_secret),
            ("initiator-to-joiner key", &device.keys.initiator_to_joiner),
            ("joiner-to-initiator key", &device.keys.joiner_to_initiator),
        ] {
            self.secrets.push(Secret {
                what: format!("{what} of node {id}"),
                bytes: key.to_vec(),
            });
        }
        // The new secrets must not have crossed the wire before now either.
        self.tap_scanned = 0;
        self.completions.push(Completion {
            node: id,
            at,
            device: device.clone(),
        });
        Ok(())
    }

    fn learn_code_secrets(&mut self, nodes: &[Node]) {
        for (id, node) in nodes.iter().enumerate() {
            if self.sessions_seen[id] {
                continue;
            }
            let Some((_, code)) = session_of(node) else {
                continue;
            };
            self.sessions_seen[id] = true;
            let keys = CodeKeys::derive(code.entropy());
            self.secrets.push(Secret {
                what: format!("code entropy of node {id}"),
                bytes: code.entropy().to_vec(),
            });
            self.secrets.push(Secret {
                what: format!("auth key of node {id}"),
                bytes: keys.auth_key().to_vec(),
            });
            // Any session seen later may carry secrets sent before it appeared.
            self.tap_scanned = 0;
        }
    }

    /// No secret (code, auth key, session keys) ever appears in a message an honest device
    /// sent. The attacker's own messages need no scan: it can only send what it learned, and
    /// the wire is all it learns from.
    fn check_wire(&mut self, sim: &Simulator) -> Result<(), String> {
        let tap = sim.tap();
        let start = self.tap_scanned.min(tap.len());
        self.tap_scanned = tap.len();
        if self.prefixes.len() != self.secrets.len() {
            self.prefixes = self.secrets.iter().map(|s| prefix(&s.bytes)).collect();
        }
        for captured in &tap[start..] {
            let honest = sim
                .node_of(&captured.from)
                .is_some_and(|n| sim.node(n).label != Label::Adversary);
            if !honest || captured.bytes.len() < 4 {
                continue;
            }
            for (at, window) in captured.bytes.windows(4).enumerate() {
                let head = prefix(window);
                for (secret, p) in self.secrets.iter().zip(&self.prefixes) {
                    if *p == head && captured.bytes[at..].starts_with(&secret.bytes) {
                        return Err(format!(
                            "the {} was sent on the wire by {:?}",
                            secret.what, captured.from
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Completions seen so far, as (node, offset, device).
    pub fn completions(&self) -> impl Iterator<Item = (NodeId, Duration, &PairedDevice)> {
        self.completions.iter().map(|c| (c.node, c.at, &c.device))
    }
}

/// Invariant 6 for the entries `node` logged in `step` from `start` on.
fn check_acknowledged_after_store(
    node: &Node,
    id: NodeId,
    start: usize,
    step: &StepReport,
) -> Result<(), String> {
    let Some(session) = node.session().filter(|s| s.spec.role == Role::Initiator) else {
        return Ok(());
    };
    let (earlier, now) = node.log.split_at(start);
    let accepted = now.iter().any(|e| match &e.action {
        Recorded::Send { bytes, .. } => matches!(
            Message::decode(bytes),
            Ok(Message::Done(Done {
                outcome: Outcome::Accepted,
                ..
            }))
        ),
        _ => false,
    });
    if !accepted {
        return Ok(());
    }
    let repeat = earlier
        .iter()
        .any(|e| matches!(e.action, Recorded::Completed(_)));
    let just_saved = step.kind == StepKind::Store
        && step.node == id
        && matches!(session.spec.store, StorePolicy::Saves { .. });
    match repeat || just_saved {
        true => Ok(()),
        false => Err(format!(
            "sent Accepted in a {:?} step, before its embedder reported the pairing stored",
            step.kind
        )),
    }
}

fn new_entries<'a>(node: &'a Node, step: &StepReport) -> &'a [LogEntry] {
    step.log_marks
        .iter()
        .find(|(n, _)| *n == step.node)
        .map_or(&[], |(_, start)| &node.log[*start..])
}

fn session_of(node: &Node) -> Option<(Role, &Code)> {
    node.session().map(|s| (s.spec.role, &s.spec.code))
}

fn initiator_expiry(sim: &Simulator, id: NodeId) -> Option<Duration> {
    match sim.node(id).pairing()? {
        Pairing::Initiator(i) => Some(sim.clock().offset_of(i.expires_at())),
        Pairing::Joiner(_) => None,
    }
}

/// `peer` is a simulated device that runs a session with the same code as node `id`, in the
/// opposite role, and `info` is what that device really shows.
fn knows_same_code(
    nodes: &[Node],
    id: NodeId,
    peer: &PeerId,
    info: &DeviceInfo,
) -> Result<(), (u8, String)> {
    let (my_role, my_code) = session_of(&nodes[id]).ok_or((0, "no session here".to_string()))?;
    let Some(other) = nodes.iter().find(|n| &n.local.peer == peer) else {
        return Err((2, "a PeerId no simulated device has".into()));
    };
    let Some((role, code)) = session_of(other) else {
        return Err((2, format!("a {:?} that runs no session", other.label)));
    };
    if code != my_code {
        return Err((
            2,
            format!("a {:?} that does not know the code", other.label),
        ));
    }
    if role == my_role {
        return Err((3, format!("a {:?} in the same role", other.label)));
    }
    if other.label == Label::Adversary {
        return Err((2, "an adversary".into()));
    }
    if &other.local.info != info {
        return Err((
            3,
            format!(
                "showing {info:?} instead of its real {:?}",
                other.local.info
            ),
        ));
    }
    Ok(())
}

fn prefix(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn is_no_session_answer(action: &Recorded) -> bool {
    let Recorded::Send { bytes, .. } = action else {
        return false;
    };
    matches!(
        Message::decode(bytes),
        Ok(Message::Done(Done {
            outcome: Outcome::Rejected(RejectReason::NoSession),
            ..
        }))
    )
}
