//! proptest strategies for schedules: seeds, network behaviour, bystanders, attacker
//! behaviours, confirm policy and code lifetime.

use std::time::Duration;

use paircode_core::Config;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use crate::attacker::{MitmMode, ProveStrategy};
use crate::net::NetConfig;
use crate::node::{ConfirmPolicy, StorePolicy};
use crate::scenario::{sim_config, AttackerSpec, Scenario};

/// At least this many cases per property unless `PROPTEST_CASES` says otherwise.
pub const DEFAULT_CASES: u32 = 2000;

/// Cases per property: `PROPTEST_CASES` if set, else 2000. (The `proptest!` macro applies
/// the same variable again on top of this config, so both agree; without it proptest's own
/// default would be 256.)
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

pub fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // A failing schedule is replayed exactly from its seed; shrinking the other knobs
        // helps, but each try is a full simulation, so keep it bounded.
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn percent(p: u32) -> f64 {
    f64::from(p) / 100.0
}

/// Any network from a perfect LAN to a bad one: up to 1.8 s one-way latency, 60 % loss,
/// 30 % duplication and 30 % of messages held back by up to 4 s. `duplicates` switches
/// network-level duplication on or off.
pub fn any_net(duplicates: bool) -> impl Strategy<Value = NetConfig> {
    let max_dup = if duplicates { 30u32 } else { 0 };
    let bad = (
        0u64..300,
        0u64..1500,
        0u32..=60,
        0u32..=max_dup,
        0u32..=30,
        0u64..4000,
    )
        .prop_map(|(lo, jitter, loss, dup, reorder, hold)| NetConfig {
            latency: (ms(lo), ms(lo + jitter)),
            loss: percent(loss),
            duplicate: percent(dup),
            reorder: percent(reorder),
            reorder_delay: ms(hold),
            lookup_latency: (ms(5), ms(500)),
            discovery_delay: (ms(1), ms(300)),
        });
    prop_oneof![1 => Just(NetConfig::perfect()), 6 => bad]
}

/// Networks the liveness property promises to cope with: loss below 30 %, no duplication,
/// and every message delivered within 0.9 s, so a round trip fits in one attempt timeout.
pub fn tame_net() -> impl Strategy<Value = NetConfig> {
    (0u64..100, 0u64..500, 0u32..30, 0u32..=30, 0u64..300).prop_map(
        |(lo, jitter, loss, reorder, hold)| NetConfig {
            latency: (ms(lo), ms(lo + jitter)),
            loss: percent(loss),
            duplicate: 0.0,
            reorder: percent(reorder),
            reorder_delay: ms(hold),
            lookup_latency: (ms(5), ms(500)),
            discovery_delay: (ms(1), ms(300)),
        },
    )
}

pub fn confirm_policy() -> impl Strategy<Value = ConfirmPolicy> {
    prop_oneof![
        Just(ConfirmPolicy::AutoAccept),
        (0u64..20_000).prop_map(|v| ConfirmPolicy::Accept { after: ms(v) }),
        (0u64..5_000).prop_map(|v| ConfirmPolicy::Reject { after: ms(v) }),
        Just(ConfirmPolicy::Never),
    ]
}

/// Short codes expire in the middle of the handshake; long ones are the real default.
pub fn code_ttl() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (500u64..10_000).prop_map(ms),
        Just(Config::default().code_ttl)
    ]
}

pub fn mitm_mode() -> impl Strategy<Value = MitmMode> {
    prop_oneof![
        Just(MitmMode::Verbatim),
        Just(MitmMode::OwnEphemeral),
        Just(MitmMode::OwnInfo),
        Just(MitmMode::ReflectMac),
    ]
}

pub fn prove_strategy() -> impl Strategy<Value = ProveStrategy> {
    proptest::sample::select(ProveStrategy::ALL.to_vec())
}

pub fn attacker() -> impl Strategy<Value = AttackerSpec> {
    prop_oneof![
        (1u32..40).prop_map(|budget| AttackerSpec::Noise { budget }),
        (1u32..40).prop_map(|budget| AttackerSpec::Replay { budget }),
        (mitm_mode(), 10u32..100).prop_map(|(mode, budget)| AttackerSpec::Mitm { mode, budget }),
        (1usize..5, prove_strategy(), 1u32..4, 0u64..10_000).prop_map(
            |(count, strategy, attempts, within)| AttackerSpec::Probers {
                count,
                strategy,
                attempts,
                start_within: ms(within),
            }
        ),
        (1usize..3, any::<bool>())
            .prop_map(|(count, near_miss)| AttackerSpec::WrongCode { count, near_miss }),
    ]
}

/// The whole space: any network, attackers of every kind, bystanders, a rival that also
/// knows the code, partitions, late starts, any confirm policy, short or long codes.
pub fn any_scenario(duplicates: bool) -> impl Strategy<Value = Scenario> {
    let who = (
        0usize..3,
        0usize..2,
        prop::bool::weighted(0.2),
        prop::collection::vec(attacker(), 0..4),
        prop::bool::weighted(0.1),
        any::<bool>(),
    );
    let when = (
        confirm_policy(),
        code_ttl(),
        10u64..30,
        0u64..3000,
        0u64..3000,
    );
    let stores = (any_store(), any_store());
    (any::<u64>(), any_net(duplicates), who, when, stores).prop_map(
        |(seed, net, who, when, stores)| {
            let (idle, busy, rival, attackers, partition, earlier) = who;
            let (alice_store, bob_store) = stores;
            let (confirm, ttl, join_secs, alice_ms, bob_ms) = when;
            Scenario {
                seed,
                net,
                cfg: Config {
                    code_ttl: ttl,
                    join_timeout: Duration::from_secs(join_secs),
                    ..sim_config()
                },
                confirm,
                alice_start: ms(alice_ms),
                bob_start: ms(bob_ms),
                idle_bystanders: idle,
                busy_bystanders: busy,
                rival,
                attackers,
                partition,
                earlier_session: earlier,
                alice_store,
                bob_store,
            }
        },
    )
}

/// How an embedder answers `Action::Store`: mostly a save that succeeds, sometimes late,
/// sometimes one that fails or never answers (full disk, hung file system).
pub fn any_store() -> impl Strategy<Value = StorePolicy> {
    prop_oneof![
        6 => (0u64..2000).prop_map(|v| StorePolicy::Saves { after: ms(v) }),
        1 => (0u64..2000).prop_map(|v| StorePolicy::Fails { after: ms(v) }),
        1 => Just(StorePolicy::Hangs),
    ]
}

/// Timeouts for the liveness property. A round trip on `tame_net` takes at most 1.8 s, under
/// the 2 s attempt timeout. An attempt (Join, Challenge, Prove) gets through with
/// probability at least 0.7^3 at 30 % loss and a failed one costs at most 3 s, so in the
/// joiner's 3 minutes the chance that all of some 60 attempts fail is about 10^-11. Loss
/// makes a finite deadline probabilistic; this makes it a non-issue at any case count.
pub fn liveness_config() -> Config {
    Config {
        code_ttl: Duration::from_secs(300),
        join_timeout: Duration::from_secs(180),
        attempt_timeout: Duration::from_secs(2),
        confirm_timeout: Duration::from_secs(120),
        ..sim_config()
    }
}

/// No attacker, a tame network, a user who accepts within 20 s.
pub fn honest_scenario() -> impl Strategy<Value = Scenario> {
    let confirm = prop_oneof![
        Just(ConfirmPolicy::AutoAccept),
        (0u64..20_000).prop_map(|v| ConfirmPolicy::Accept { after: ms(v) }),
    ];
    (
        any::<u64>(),
        tame_net(),
        confirm,
        0u64..5000,
        0u64..5000,
        0usize..4,
        0usize..3,
    )
        .prop_map(
            |(seed, net, confirm, alice_ms, bob_ms, idle, busy)| Scenario {
                seed,
                net,
                cfg: liveness_config(),
                confirm,
                alice_start: ms(alice_ms),
                bob_start: ms(bob_ms),
                idle_bystanders: idle,
                busy_bystanders: busy,
                ..Scenario::honest(seed)
            },
        )
}
