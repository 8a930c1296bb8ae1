//! A simulated peer: an identity, what drives it, and everything it did.

use std::time::{Duration, Instant};

use paircode_core::InitiatorState;
use paircode_core::JoinerState;
use paircode_core::{Code, Config, LocalDevice, Pairing, PairingHost, Role, SessionId};

use crate::attacker::Attacker;
use crate::record::LogEntry;

pub type NodeId = usize;

/// How the initiator's user answers `Action::Confirm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmPolicy {
    /// `Config::auto_accept`: the state machine never asks.
    AutoAccept,
    Accept {
        after: Duration,
    },
    Reject {
        after: Duration,
    },
    /// The user walked away; only the code's expiry ends the session.
    Never,
}

/// How a device's embedder answers `Action::Store`: whether its save succeeds, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorePolicy {
    /// The save succeeds after `after`.
    Saves { after: Duration },
    /// The save fails (a full disk, say) after `after`.
    Fails { after: Duration },
    /// The embedder never answers (it hangs); only `Config::store_timeout` ends the wait.
    Hangs,
}

impl Default for StorePolicy {
    /// A save that succeeds at once.
    fn default() -> Self {
        StorePolicy::Saves {
            after: Duration::ZERO,
        }
    }
}

/// Who a node is in the story, for reports and for invariants that name the honest pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Alice,
    Bob,
    /// A second device that was also told the code (it may legitimately win the race).
    Rival,
    /// An unrelated device on the same network, possibly running its own pairing.
    Bystander,
    /// Anything run by the attacker, including joiners with a wrong code.
    Adversary,
}

#[derive(Clone)]
pub struct SessionSpec {
    pub role: Role,
    pub code: Code,
    pub cfg: Config,
    /// Seed of the RNG handed to `Pairing::initiator` / `Pairing::joiner`.
    pub seed: [u8; 32],
    pub start_at: Duration,
    pub policy: ConfirmPolicy,
    pub store: StorePolicy,
}

pub struct SessionNode {
    pub spec: SessionSpec,
    /// `None` until the session starts; the device answers like one without a session.
    pub session: Option<SessionId>,
    pub started_at: Option<Instant>,
}

pub enum Brain {
    /// A device with no pairing session: its host answers for it.
    Idle,
    Session(Box<SessionNode>),
    Attacker(Box<Attacker>),
}

pub struct Node {
    pub local: LocalDevice,
    pub label: Label,
    pub brain: Brain,
    /// The router the real driver uses too; every input of a session or idle node goes
    /// through it (an attacker bypasses it).
    pub host: PairingHost,
    pub log: Vec<LogEntry>,
    /// The timer currently queued for this node, to recognise stale queue entries.
    pub(crate) timer: Option<Instant>,
}

/// The observable state of a session, compared before and after each input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Initiator(InitiatorState),
    Joiner(JoinerState),
}

impl SessionState {
    pub fn of(pairing: &Pairing) -> Self {
        match pairing {
            Pairing::Initiator(i) => SessionState::Initiator(i.state()),
            Pairing::Joiner(j) => SessionState::Joiner(j.state()),
        }
    }

    /// The state enum alone, without the attempt count.
    pub fn phase(&self) -> Phase {
        match self {
            SessionState::Initiator(state) => Phase::Initiator(*state),
            SessionState::Joiner(state) => Phase::Joiner(*state),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Initiator(InitiatorState),
    Joiner(JoinerState),
}

impl Node {
    pub fn session(&self) -> Option<&SessionNode> {
        match &self.brain {
            Brain::Session(s) => Some(s),
            _ => None,
        }
    }

    /// The session messages reach: the running one, else a lingering initiator.
    pub fn pairing(&self) -> Option<&Pairing> {
        self.host.pairing().or_else(|| self.host.lingering())
    }

    pub fn state(&self) -> Option<SessionState> {
        self.pairing().map(SessionState::of)
    }

    pub fn attacker(&self) -> Option<&Attacker> {
        match &self.brain {
            Brain::Attacker(a) => Some(a),
            _ => None,
        }
    }
}

impl Node {
    /// When and with what this node's session completed, if it did.
    pub fn completed(&self) -> Option<(std::time::Duration, &paircode_core::PairedDevice)> {
        self.log.iter().find_map(|e| match &e.action {
            crate::record::Recorded::Completed(d) => Some((e.at, &**d)),
            _ => None,
        })
    }

    /// When and why this node's session failed, if it did.
    pub fn failed(&self) -> Option<(std::time::Duration, &paircode_core::FailReason)> {
        self.log.iter().find_map(|e| match &e.action {
            crate::record::Recorded::Failed(r) => Some((e.at, r)),
            _ => None,
        })
    }
}
