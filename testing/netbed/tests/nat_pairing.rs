//! Pairing across NATs with the code alone, with real node processes (`paircode-node`)
//! in two homes and a meeting point on the internet (in-process, in its own namespace).
//! The nodes know nothing but the meeting point's address: the joiner finds the initiator
//! in the DHT through it, reaches it through its relay, and DCUtR upgrades the connection
//! to a direct one where the NATs allow.
//!
//! Each scenario prints one line to stderr with the path (direct/relayed) and the times.
//! Needs root, iproute2 and nftables; prints "skipping: …" otherwise.

use std::io::Write;
use std::time::{Duration, Instant};

use paircode_netbed::lab::{self, Home, Host, Impairment, Lab, Nat, TwoHomes};
use paircode_netbed::meeting_point::RunningMeetingPoint;
use paircode_netbed::{NodeArgs, NodeProcess, Rt};
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_paircode-node");
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn log(line: String) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn skip() -> bool {
    match lab::nat_skip_reason() {
        Some(reason) => {
            log(format!("skipping: {reason}"));
            true
        }
        None => false,
    }
}

fn args(role: &'static str, host: &Host, relays: &[String], mdns: bool) -> NodeArgs {
    NodeArgs {
        runtime: Rt::Tokio,
        role,
        name: format!("{role}-{}", host.name),
        listen: format!("/ip4/{}/tcp/0", host.addr),
        mdns,
        bootstrap: Vec::new(),
        join_timeout_ms: None,
        relays: relays.to_vec(),
        extra: Vec::new(),
    }
}

/// Starts a node and waits for its meeting points to settle; returns it with its peer id
/// and the meeting points' states.
fn start(host: &Host, args: &NodeArgs) -> (NodeProcess, String, Vec<Value>) {
    let mut node = NodeProcess::spawn(NODE, Some(&host.ns), args);
    let ready = node.expect("ready", EVENT_TIMEOUT);
    let settled = node.expect("meeting_points", EVENT_TIMEOUT);
    let states = settled["states"].as_array().cloned().unwrap_or_default();
    (node, ready["peer"].as_str().unwrap().to_owned(), states)
}

/// Asks `node` how it reaches `peer` now.
fn path(node: &mut NodeProcess, peer: &str) -> Option<String> {
    node.send(&format!("path {peer}"));
    let answer = node.expect("path", EVENT_TIMEOUT);
    answer["path"].as_str().map(str::to_owned)
}

/// Two homes behind `nat_a` and `nat_b` (each uplink delayed by `delay` one way), a
/// meeting point on the internet; alice (home a) offers a code, bob (home b) joins with
/// it. Returns bob's path to alice over time: the first one seen and whether it became
/// direct, with the times.
struct Outcome {
    paired_after: Duration,
    first_path: Option<String>,
    direct_after_pairing: Option<Duration>,
    reserved_after_ms: f64,
    /// Once direct: how long until no relayed connection was left (bob's view).
    relay_left_after_direct: Option<Duration>,
    /// Once the relay was left: a stream bob opened to alice, and the path right after.
    echo: Option<Value>,
}

/// Polls `node`'s relayed connections to `peer` until none is left (at most `limit`).
fn relay_left(node: &mut NodeProcess, peer: &str, limit: Duration) -> Option<Duration> {
    let since = Instant::now();
    while since.elapsed() < limit {
        node.send(&format!("path {peer}"));
        let answer = node.expect("path", EVENT_TIMEOUT);
        if answer["path"] == "direct" && answer["relayed_connections"] == 0 {
            return Some(since.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Scenario 5's impairment: `delay` one way on each home's uplink (none for zero).
fn delay_uplinks(lab: &Lab, homes: [&Home; 2], delay: Duration) {
    if delay.is_zero() {
        return;
    }
    for home in homes {
        let impairment = Impairment {
            delay,
            loss_percent: 0.0,
        };
        lab.impair(&home.uplink, impairment).unwrap();
    }
}

/// Scenario 5's delay, one way on each home's uplink.
const HOME_LINK_DELAY: Duration = Duration::from_millis(20);

/// How a scenario's log line names its delay.
fn delay_label(delay: Duration) -> String {
    match delay.is_zero() {
        true => String::new(),
        false => format!(", {} ms per home link", delay.as_millis()),
    }
}

fn pair_across(nat_a: Nat, nat_b: Nat, delay: Duration, watch: Duration) -> Option<Outcome> {
    if skip() {
        return None;
    }
    let mut lab = Lab::new();
    let TwoHomes {
        server,
        home_a,
        home_b,
        alice: alice_host,
        bob: bob_host,
    } = lab.two_homes(nat_a, nat_b).unwrap();
    delay_uplinks(&lab, [&home_a, &home_b], delay);
    let meeting_point = RunningMeetingPoint::start(&server);
    let relays = vec![meeting_point.addr.to_string()];

    let (mut alice, alice_id, states) =
        start(&alice_host, &args("initiator", &alice_host, &relays, false));
    assert_eq!(states, ["reserved"], "alice holds a relay reservation");
    let code = alice.expect("code", EVENT_TIMEOUT)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_started = Instant::now();
    let (mut bob, bob_id, states) = start(&bob_host, &args("joiner", &bob_host, &relays, false));
    assert_eq!(states, ["reserved"], "bob holds a relay reservation");
    let reserved_after_ms = bob_started.elapsed().as_secs_f64() * 1000.0;

    let joined = Instant::now();
    bob.send(&format!("join {code}"));
    let on_bob = bob.expect("completed", EVENT_TIMEOUT);
    let on_alice = alice.expect("completed", EVENT_TIMEOUT);
    let paired_after = joined.elapsed();
    assert_eq!(on_bob["device"]["peer"], alice_id.as_str());
    assert_eq!(on_alice["device"]["peer"], bob_id.as_str());
    assert_eq!(
        on_bob["device"]["pairing_secret"],
        on_alice["device"]["pairing_secret"]
    );

    let paired_at = Instant::now();
    let first_path = path(&mut bob, &alice_id);
    let mut direct_after_pairing = None;
    while paired_at.elapsed() < watch {
        if path(&mut bob, &alice_id).as_deref() == Some("direct") {
            direct_after_pairing = Some(paired_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut relay_left_after_direct, mut echo) = (None, None);
    if direct_after_pairing.is_some() {
        // As the daemons do after pairing: each adds the other to its paired set.
        alice.send(&format!("paired {bob_id}"));
        alice.expect("paired", EVENT_TIMEOUT);
        bob.send(&format!("paired {alice_id}"));
        bob.expect("paired", EVENT_TIMEOUT);
        relay_left_after_direct = relay_left(&mut bob, &alice_id, Duration::from_secs(10));
        if relay_left_after_direct.is_some() {
            bob.send(&format!("echo {alice_id}"));
            echo = Some(bob.expect("echo", EVENT_TIMEOUT));
        }
    }
    alice.quit();
    bob.quit();
    Some(Outcome {
        paired_after,
        first_path,
        direct_after_pairing,
        reserved_after_ms,
        relay_left_after_direct,
        echo,
    })
}

fn log_outcome(scenario: &str, outcome: &Outcome) {
    let path = match outcome.direct_after_pairing {
        Some(_) => "direct",
        None => "relayed",
    };
    log(format!(
        "[nat-pairing] {scenario}: path {path}; bob reserved in {:.0} ms; join → paired {:.0} ms; \
         first path {:?}; direct {}; relayed connection closed {}",
        outcome.reserved_after_ms,
        outcome.paired_after.as_secs_f64() * 1000.0,
        outcome.first_path,
        match outcome.direct_after_pairing {
            Some(d) => format!("{:.0} ms after pairing", d.as_secs_f64() * 1000.0),
            None => "never".to_owned(),
        },
        match outcome.relay_left_after_direct {
            Some(d) => format!("{:.0} ms after direct", d.as_secs_f64() * 1000.0),
            None => "never".to_owned(),
        },
    ));
}

/// Scenario 1: two homes behind port-preserving NATs pair with the code alone through the
/// meeting point and end on a direct connection.
#[test]
fn two_port_preserving_homes_pair_with_the_code_and_end_direct() {
    let Some(outcome) = pair_across(
        Nat::PortPreserving,
        Nat::PortPreserving,
        Duration::ZERO,
        Duration::from_secs(10),
    ) else {
        return;
    };
    log_outcome("two port-preserving NATs", &outcome);
    assert!(
        outcome.direct_after_pairing.is_some(),
        "the connection never became direct"
    );
    assert_direct_only(&outcome);
}

/// Once direct, traffic leaves the relay: the relayed connection is closed, and a stream
/// opened afterwards (`Node::connect`, what `paircode send` uses) goes direct.
fn assert_direct_only(outcome: &Outcome) {
    assert!(
        outcome.relay_left_after_direct.is_some(),
        "the relayed connection stayed open next to the direct one"
    );
    let echo = outcome
        .echo
        .as_ref()
        .expect("a stream after the relay was left");
    assert_eq!(echo["ok"], true, "the stream went through: {echo}");
    assert_eq!(echo["path"], "direct", "{echo}");
    assert_eq!(
        echo["relayed_connections"], 0,
        "no relayed connection came back: {echo}"
    );
}

/// Scenario 5 for scenario 1: 20 ms one way on each home's uplink.
#[test]
fn two_port_preserving_homes_with_20ms_per_link_end_direct() {
    let Some(outcome) = pair_across(
        Nat::PortPreserving,
        Nat::PortPreserving,
        HOME_LINK_DELAY,
        Duration::from_secs(10),
    ) else {
        return;
    };
    log_outcome(
        &format!("two port-preserving NATs{}", delay_label(HOME_LINK_DELAY)),
        &outcome,
    );
    assert!(
        outcome.direct_after_pairing.is_some(),
        "the connection never became direct"
    );
    assert_direct_only(&outcome);
}

/// Scenario 2: one symmetric NAT: pairing works, the connection stays relayed.
#[test]
fn one_symmetric_nat_pairs_and_stays_relayed() {
    symmetric_nat_stays_relayed(Duration::ZERO);
}

/// Scenario 5 for scenario 2: 20 ms one way on each home's uplink.
#[test]
fn one_symmetric_nat_with_20ms_per_link_pairs_and_stays_relayed() {
    symmetric_nat_stays_relayed(HOME_LINK_DELAY);
}

fn symmetric_nat_stays_relayed(delay: Duration) {
    let Some(outcome) = pair_across(
        Nat::PortPreserving,
        Nat::Symmetric,
        delay,
        Duration::from_secs(8),
    ) else {
        return;
    };
    log_outcome(
        &format!("one symmetric NAT{}", delay_label(delay)),
        &outcome,
    );
    assert_eq!(outcome.first_path.as_deref(), Some("relayed"));
    assert!(
        outcome.direct_after_pairing.is_none(),
        "a symmetric NAT cannot be punched through"
    );
}

/// Scenario 4: the meeting point is down. Two devices in one home still pair over the LAN
/// (mDNS); a device in another home cannot find the code and says so within its join
/// timeout; every node reports the meeting point unreachable.
#[test]
fn meeting_point_down_lan_pairing_works_and_a_cross_network_join_fails_clearly() {
    meeting_point_down(Duration::ZERO);
}

/// Scenario 5 for scenario 4: 20 ms one way on each home's uplink.
#[test]
fn meeting_point_down_with_20ms_per_link_lan_pairing_works_and_a_join_fails_clearly() {
    meeting_point_down(HOME_LINK_DELAY);
}

fn meeting_point_down(delay: Duration) {
    if skip() {
        return;
    }
    let mut lab = Lab::new();
    let internet = lab.internet().unwrap();
    let server = lab.host("mp", internet, false).unwrap();
    let home_a = lab.home("home-a", internet, Nat::PortPreserving).unwrap();
    let home_b = lab.home("home-b", internet, Nat::PortPreserving).unwrap();
    let alice_host = lab.host("alice", home_a.lan, false).unwrap();
    let carol_host = lab.host("carol", home_a.lan, false).unwrap();
    let bob_host = lab.host("bob", home_b.lan, false).unwrap();
    delay_uplinks(&lab, [&home_a, &home_b], delay);
    // The meeting point ran once (so its address is real) and is gone.
    let dead = RunningMeetingPoint::start(&server);
    let relays = vec![dead.addr.to_string()];
    drop(dead);

    let (mut alice, alice_id, states) =
        start(&alice_host, &args("initiator", &alice_host, &relays, true));
    assert_eq!(states, ["unreachable"]);
    let code = alice.expect("code", EVENT_TIMEOUT)["code"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another home first, while the code is fresh: the join must fail, in time.
    const JOIN_TIMEOUT_MS: u64 = 5_000;
    let mut bob_args = args("joiner", &bob_host, &relays, false);
    bob_args.join_timeout_ms = Some(JOIN_TIMEOUT_MS);
    let (mut bob, _, states) = start(&bob_host, &bob_args);
    assert_eq!(states, ["unreachable"]);
    let started = Instant::now();
    bob.send(&format!("join {code}"));
    let failed = loop {
        let event = bob.next(EVENT_TIMEOUT);
        if event["event"] == "failed" {
            break event;
        }
        assert_ne!(event["event"], "completed", "bob cannot reach alice");
    };
    let failed_after = started.elapsed();
    assert_eq!(failed["kind"], "NoDeviceAnswered", "{failed}");
    assert!(
        failed_after < Duration::from_millis(JOIN_TIMEOUT_MS + 2_000),
        "the join failed only after {failed_after:?}"
    );

    // The same home: mDNS.
    let lan_started = Instant::now();
    let (mut carol, carol_id, states) =
        start(&carol_host, &args("joiner", &carol_host, &relays, true));
    assert_eq!(states, ["unreachable"]);
    carol.send(&format!("join {code}"));
    let on_carol = carol.expect("completed", EVENT_TIMEOUT);
    let on_alice = alice.expect("completed", EVENT_TIMEOUT);
    assert_eq!(on_carol["device"]["peer"], alice_id.as_str());
    assert_eq!(on_alice["device"]["peer"], carol_id.as_str());
    let lan_path = path(&mut carol, &alice_id);
    assert_eq!(lan_path.as_deref(), Some("direct"));
    log(format!(
        "[nat-pairing] meeting point down{}: cross-network join failed ({}) after {:.0} ms \
         (timeout {JOIN_TIMEOUT_MS} ms); LAN pairing path {} in {:.0} ms",
        delay_label(delay),
        failed["error"],
        failed_after.as_secs_f64() * 1000.0,
        lan_path.unwrap_or_default(),
        lan_started.elapsed().as_secs_f64() * 1000.0,
    ));
    alice.quit();
    bob.quit();
    carol.quit();
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// Waits until `node` reports `peer` online; returns how long that took from `since`.
fn online(node: &mut NodeProcess, peer: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        let left = limit.saturating_sub(since.elapsed());
        let event = node.next(left);
        if event["event"] == "online" && event["peer"] == peer {
            return since.elapsed();
        }
    }
}

/// Scenario 3: two devices paired across two port-preserving NATs both restart; knowing
/// only the meeting point and each other (identity and pairing secret), they find each
/// other again through their pair's rendezvous record, online within 10 s, and end on a
/// direct connection.
#[test]
fn paired_devices_find_each_other_again_across_nats_after_restarting() {
    restart_across(Duration::ZERO);
}

/// Scenario 5 for scenario 3: 20 ms one way on each home's uplink.
#[test]
fn paired_devices_with_20ms_per_link_find_each_other_again_after_restarting() {
    restart_across(HOME_LINK_DELAY);
}

fn restart_across(delay: Duration) {
    if skip() {
        return;
    }
    let mut lab = Lab::new();
    let TwoHomes {
        server,
        home_a,
        home_b,
        alice: alice_host,
        bob: bob_host,
    } = lab
        .two_homes(Nat::PortPreserving, Nat::PortPreserving)
        .unwrap();
    delay_uplinks(&lab, [&home_a, &home_b], delay);
    let meeting_point = RunningMeetingPoint::start(&server);
    let relays = vec![meeting_point.addr.to_string()];
    let (alice_key, bob_key) = (random_secret(), random_secret());
    let with_identity = |mut args: NodeArgs, key: &str| {
        args.extra = vec!["--identity".to_owned(), key.to_owned()];
        args
    };

    // Pair once.
    let (mut alice, alice_id, _) = start(
        &alice_host,
        &with_identity(args("initiator", &alice_host, &relays, false), &alice_key),
    );
    let code = alice.expect("code", EVENT_TIMEOUT)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut bob, bob_id, _) = start(
        &bob_host,
        &with_identity(args("joiner", &bob_host, &relays, false), &bob_key),
    );
    bob.send(&format!("join {code}"));
    let secret = bob.expect("completed", EVENT_TIMEOUT)["device"]["pairing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.expect("completed", EVENT_TIMEOUT);
    alice.quit();
    bob.quit();

    // Both restart at once, as restarted daemons do.
    let restarted = |host: &Host, key: &str, other: &str| {
        let mut args = with_identity(args("device", host, &relays, false), key);
        args.extra
            .extend(["--paired".to_owned(), format!("{other}={secret}")]);
        NodeProcess::spawn(NODE, Some(&host.ns), &args)
    };
    let started = Instant::now();
    let mut alice = restarted(&alice_host, &alice_key, &bob_id);
    let mut bob = restarted(&bob_host, &bob_key, &alice_id);
    let limit = Duration::from_secs(10);
    let bob_online_on_alice = online(&mut alice, &bob_id, started, limit);
    let alice_online_on_bob = online(&mut bob, &alice_id, started, limit);
    let mut final_path = path(&mut bob, &alice_id);
    let direct_deadline = Instant::now() + Duration::from_secs(10);
    while final_path.as_deref() != Some("direct") && Instant::now() < direct_deadline {
        std::thread::sleep(Duration::from_millis(50));
        final_path = path(&mut bob, &alice_id);
    }
    log(format!(
        "[nat-pairing] restart across two port-preserving NATs{}: path {}; bob online on \
         alice after {:.0} ms, alice on bob after {:.0} ms (from both restarting)",
        delay_label(delay),
        final_path.clone().unwrap_or_default(),
        bob_online_on_alice.as_secs_f64() * 1000.0,
        alice_online_on_bob.as_secs_f64() * 1000.0,
    ));
    assert_eq!(final_path.as_deref(), Some("direct"));
    alice.quit();
    bob.quit();
}
