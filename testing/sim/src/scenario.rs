//! A pairing story to simulate: Alice, Bob, the network between them, who else is around,
//! and what the attacker does. Built into a `World` from one seed.

use std::time::{Duration, Instant};

use paircode_core::{Code, Config, LocalDevice, Role};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::attacker::{Attacker, Intel, Mitm, MitmMode, Noise, Prober, ProveStrategy, Replayer};
use crate::ids::synthetic_device;
use crate::invariants::{Invariants, Violation};
use crate::net::{Captured, NetConfig};
use crate::node::{Brain, ConfirmPolicy, Label, NodeId, SessionSpec, StorePolicy};
use crate::random::{bytes32, fork, stream_rng, Stream};
use crate::sim::{session_brain, Simulator};

#[derive(Debug, Clone, PartialEq)]
pub enum AttackerSpec {
    /// Malformed bytes of every family, `budget` messages in all.
    Noise { budget: u32 },
    /// Replays of live and earlier-session traffic, `budget` messages in all.
    Replay { budget: u32 },
    /// A relay between Bob and Alice under its own PeerId.
    Mitm { mode: MitmMode, budget: u32 },
    /// `count` peers that know the discovery id but not the auth key.
    Probers {
        count: usize,
        strategy: ProveStrategy,
        attempts: u32,
        start_within: Duration,
    },
    /// `count` joiners with a valid code that is not Alice's; `near_miss` makes each code
    /// differ from Alice's in a single bit.
    WrongCode { count: usize, near_miss: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub seed: u64,
    pub net: NetConfig,
    /// Configuration of every session; `auto_accept` follows from `confirm`.
    pub cfg: Config,
    pub confirm: ConfirmPolicy,
    pub alice_start: Duration,
    pub bob_start: Duration,
    /// Devices with no pairing session.
    pub idle_bystanders: usize,
    /// Devices running a pairing of their own, with a code nobody here knows.
    pub busy_bystanders: usize,
    /// A second device that was also given the code and joins too.
    pub rival: bool,
    pub attackers: Vec<AttackerSpec>,
    /// Alice and Bob cannot reach each other directly.
    pub partition: bool,
    /// Give the attacker the traffic of an earlier pairing between the same two devices.
    pub earlier_session: bool,
    /// How Alice's and Bob's embedders answer `Action::Store`.
    pub alice_store: StorePolicy,
    pub bob_store: StorePolicy,
}

/// A built scenario, ready to run.
pub struct World {
    pub sim: Simulator,
    pub alice: NodeId,
    pub bob: NodeId,
    pub rival: Option<NodeId>,
    /// Every node the attacker runs.
    pub adversaries: Vec<NodeId>,
    pub code: Code,
    /// Run no further than this: every session has ended by then.
    pub horizon: Duration,
}

/// Timeouts for simulations: the defaults scaled so that a run is short in virtual time
/// (fewer events) while keeping their proportions.
pub fn sim_config() -> Config {
    Config {
        code_ttl: Duration::from_secs(120),
        auto_accept: false,
        join_timeout: Duration::from_secs(30),
        attempt_timeout: Duration::from_secs(2),
        retry_interval: Duration::from_secs(1),
        lookup_interval: Duration::from_secs(3),
        confirm_timeout: Duration::from_secs(60),
        ..Config::default()
    }
}

impl Scenario {
    /// Alice and Bob alone on a perfect LAN, Alice's user accepting after a second.
    pub fn honest(seed: u64) -> Self {
        Scenario {
            seed,
            net: NetConfig::perfect(),
            cfg: sim_config(),
            confirm: ConfirmPolicy::Accept {
                after: Duration::from_secs(1),
            },
            alice_start: Duration::ZERO,
            bob_start: Duration::from_millis(100),
            idle_bystanders: 0,
            busy_bystanders: 0,
            rival: false,
            attackers: Vec::new(),
            partition: false,
            earlier_session: false,
            alice_store: StorePolicy::default(),
            bob_store: StorePolicy::default(),
        }
    }

    pub fn horizon(&self) -> Duration {
        let c = &self.cfg;
        let confirm_delay = match self.confirm {
            ConfirmPolicy::Accept { after } | ConfirmPolicy::Reject { after } => after,
            ConfirmPolicy::AutoAccept | ConfirmPolicy::Never => Duration::ZERO,
        };
        self.alice_start.max(self.bob_start)
            + c.code_ttl
            + c.join_timeout * 2
            + c.confirm_timeout
            + confirm_delay
            + Duration::from_secs(60)
    }

    pub fn build(&self, base: Instant) -> World {
        let mut setup = stream_rng(self.seed, Stream::Setup);
        let mut attack_rng = stream_rng(self.seed, Stream::Attackers);
        let code = Code::generate(&mut setup);
        let mut alice_cfg = self.cfg.clone();
        alice_cfg.auto_accept = self.confirm == ConfirmPolicy::AutoAccept;
        let alice_dev = synthetic_device(&mut setup, "alice");
        let bob_dev = synthetic_device(&mut setup, "bob");
        let corpus = match self.earlier_session {
            true => earlier_session(self.seed, base, &alice_dev, &bob_dev, &mut setup),
            false => Vec::new(),
        };

        let mut sim = Simulator::new(base, self.net.clone(), self.seed);
        let alice = sim.add_node(
            alice_dev.clone(),
            Label::Alice,
            session_brain(SessionSpec {
                role: Role::Initiator,
                code: code.clone(),
                cfg: alice_cfg,
                seed: bytes32(&mut setup),
                start_at: self.alice_start,
                policy: self.confirm,
                store: self.alice_store,
            }),
        );
        let joiner = |code: &Code, setup: &mut ChaCha20Rng, start_at, store| {
            session_brain(SessionSpec {
                role: Role::Joiner,
                code: code.clone(),
                cfg: self.cfg.clone(),
                seed: bytes32(setup),
                start_at,
                policy: ConfirmPolicy::AutoAccept,
                store,
            })
        };
        let bob = sim.add_node(
            bob_dev.clone(),
            Label::Bob,
            joiner(&code, &mut setup, self.bob_start, self.bob_store),
        );
        if self.partition {
            sim.cut(alice, bob);
        }
        let rival = self.rival.then(|| {
            let dev = synthetic_device(&mut setup, "rival");
            let brain = joiner(&code, &mut setup, self.bob_start, StorePolicy::default());
            sim.add_node(dev, Label::Rival, brain)
        });
        for i in 0..self.idle_bystanders {
            sim.add_node(
                synthetic_device(&mut setup, &format!("idle-{i}")),
                Label::Bystander,
                Brain::Idle,
            );
        }
        for i in 0..self.busy_bystanders {
            let dev = synthetic_device(&mut setup, &format!("busy-{i}"));
            let brain = session_brain(SessionSpec {
                role: Role::Initiator,
                code: Code::generate(&mut setup),
                cfg: self.cfg.clone(),
                seed: bytes32(&mut setup),
                start_at: Duration::ZERO,
                policy: ConfirmPolicy::Accept {
                    after: Duration::ZERO,
                },
                store: StorePolicy::default(),
            });
            sim.add_node(dev, Label::Bystander, brain);
        }

        let intel = Intel {
            discovery_id: code.keys().discovery_id,
            alice: alice_dev.peer.clone(),
            bob: bob_dev.peer.clone(),
            peers: sim
                .nodes()
                .iter()
                .filter(|n| !matches!(n.label, Label::Alice | Label::Bob))
                .map(|n| n.local.peer.clone())
                .collect(),
            corpus,
        };
        for (i, spec) in self.attackers.iter().enumerate() {
            self.add_attacker(
                &mut sim,
                i,
                spec,
                &intel,
                &code,
                &mut setup,
                &mut attack_rng,
            );
        }
        let adversaries = (0..sim.nodes().len())
            .filter(|&n| sim.node(n).label == Label::Adversary)
            .collect();
        World {
            sim,
            alice,
            bob,
            rival,
            adversaries,
            code,
            horizon: self.horizon(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_attacker(
        &self,
        sim: &mut Simulator,
        i: usize,
        spec: &AttackerSpec,
        intel: &Intel,
        code: &Code,
        setup: &mut ChaCha20Rng,
        attack_rng: &mut ChaCha20Rng,
    ) {
        let interval = (Duration::from_millis(50), Duration::from_millis(1500));
        let mut add = |sim: &mut Simulator, name: String, attacker: Attacker| {
            sim.add_node(
                synthetic_device(setup, &name),
                Label::Adversary,
                Brain::Attacker(Box::new(attacker)),
            )
        };
        match spec {
            AttackerSpec::Noise { budget } => {
                let a = Noise::new(fork(attack_rng), intel.clone(), *budget, interval);
                add(sim, format!("noise-{i}"), Attacker::Noise(a));
            }
            AttackerSpec::Replay { budget } => {
                let a = Replayer::new(fork(attack_rng), intel.clone(), *budget, interval);
                add(sim, format!("replay-{i}"), Attacker::Replay(a));
            }
            AttackerSpec::Mitm { mode, budget } => {
                let a = Mitm::new(fork(attack_rng), intel.clone(), *mode, *budget);
                add(sim, format!("mitm-{i}"), Attacker::Mitm(a));
            }
            AttackerSpec::Probers {
                count,
                strategy,
                attempts,
                start_within,
            } => {
                for k in 0..*count {
                    let a = Prober::new(
                        fork(attack_rng),
                        intel.clone(),
                        *strategy,
                        *attempts,
                        *start_within,
                    );
                    add(sim, format!("prober-{i}-{k}"), Attacker::Prober(a));
                }
            }
            AttackerSpec::WrongCode { count, near_miss } => {
                for k in 0..*count {
                    let wrong = if *near_miss {
                        let mut entropy = *code.entropy();
                        let bit = attack_rng.next_u32() as usize % 128;
                        entropy[bit / 8] ^= 1 << (bit % 8);
                        Code::from_entropy(entropy)
                    } else {
                        Code::generate(attack_rng)
                    };
                    let brain = session_brain(SessionSpec {
                        role: Role::Joiner,
                        code: wrong,
                        cfg: self.cfg.clone(),
                        seed: bytes32(attack_rng),
                        start_at: self.bob_start,
                        policy: ConfirmPolicy::AutoAccept,
                        store: StorePolicy::default(),
                    });
                    sim.add_node(
                        synthetic_device(setup, &format!("wrong-{i}-{k}")),
                        Label::Adversary,
                        brain,
                    );
                }
            }
        }
    }
}

impl World {
    /// Runs to the horizon, checking every invariant after every step.
    pub fn run_checked(&mut self) -> Result<Invariants, Violation> {
        self.run_checked_until(|_| false)
    }

    /// Runs to the horizon or until `done` holds, checking every invariant after every step.
    pub fn run_checked_until(
        &mut self,
        done: impl Fn(&Simulator) -> bool,
    ) -> Result<Invariants, Violation> {
        let mut invariants = Invariants::new();
        let mut result = Ok(());
        self.sim.run_while(self.horizon, |sim, step| {
            result = invariants.check(sim, step);
            result.is_ok() && !done(sim)
        });
        result.map(|()| invariants)
    }

    /// Both Alice and Bob have completed.
    pub fn paired(sim: &Simulator, alice: NodeId, bob: NodeId) -> bool {
        sim.node(alice).completed().is_some() && sim.node(bob).completed().is_some()
    }
}

/// The traffic of an earlier, completed pairing between the same two devices with another
/// code: material for replays across sessions.
fn earlier_session(
    seed: u64,
    base: Instant,
    alice: &LocalDevice,
    bob: &LocalDevice,
    setup: &mut ChaCha20Rng,
) -> Vec<Captured> {
    let code = Code::generate(setup);
    let cfg = Config {
        auto_accept: true,
        ..sim_config()
    };
    let mut sim = Simulator::new(base, NetConfig::perfect(), seed ^ 0x5eed);
    for (dev, label, role) in [
        (alice, Label::Alice, Role::Initiator),
        (bob, Label::Bob, Role::Joiner),
    ] {
        let brain = session_brain(SessionSpec {
            role,
            code: code.clone(),
            cfg: cfg.clone(),
            seed: bytes32(setup),
            start_at: Duration::ZERO,
            policy: ConfirmPolicy::AutoAccept,
            store: StorePolicy::default(),
        });
        sim.add_node(dev.clone(), label, brain);
    }
    sim.run(Duration::from_secs(10), |_, _| {});
    sim.tap().to_vec()
}
