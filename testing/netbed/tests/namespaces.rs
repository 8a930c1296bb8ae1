//! Two hosts in their own network namespaces on a bridge, each running a node as a
//! separate OS process (`paircode-node`): mDNS discovery across runtimes and start orders,
//! and a DHT-only pairing between processes.
//!
//! Needs root and iproute2; prints "skipping: …" and returns otherwise.

use std::time::Duration;

use paircode_netbed::{namespace_skip_reason, NetBed, NodeArgs, NodeProcess, Rt};
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_paircode-node");
/// "Long before": past libp2p-mdns's first probes, so without a fresh query on join the
/// late node would only be found at the early node's next re-query.
const HEAD_START: Duration = Duration::from_secs(3);
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn bed() -> Option<NetBed> {
    if let Some(reason) = namespace_skip_reason() {
        println!("skipping: {reason}");
        return None;
    }
    match NetBed::new() {
        Ok(bed) => Some(bed),
        Err(e) => {
            println!("skipping: cannot create network namespaces: {e}");
            None
        }
    }
}

fn node_args(runtime: Rt, role: &'static str, host: &str, mdns: bool) -> NodeArgs {
    NodeArgs {
        runtime,
        role,
        name: format!("{role}-{}", runtime.name()),
        listen: format!("/ip4/{host}/tcp/0"),
        mdns,
        bootstrap: Vec::new(),
        join_timeout_ms: None,
        relays: Vec::new(),
        extra: Vec::new(),
    }
}

/// Both sides completed with each other's PeerId and name, and the same keys.
fn assert_paired(initiator: (&Value, &Value), joiner: (&Value, &Value)) {
    let (i_ready, i_done) = initiator;
    let (j_ready, j_done) = joiner;
    let (on_i, on_j) = (&i_done["device"], &j_done["device"]);
    assert_eq!(
        on_i["peer"], j_ready["peer"],
        "initiator paired with the joiner"
    );
    assert_eq!(
        on_j["peer"], i_ready["peer"],
        "joiner paired with the initiator"
    );
    for key in [
        "pairing_secret",
        "initiator_to_joiner",
        "joiner_to_initiator",
        "transcript",
    ] {
        assert_eq!(on_i[key], on_j[key], "{key} differs");
        assert_eq!(on_i[key].as_str().map(str::len), Some(64));
    }
    assert_eq!(on_i["role"], "Initiator");
    assert_eq!(on_j["role"], "Joiner");
}

fn mdns_pairing(initiator_rt: Rt, joiner_rt: Rt, joiner_first: bool) {
    let Some(bed) = bed() else { return };
    let i_args = node_args(initiator_rt, "initiator", &bed.addr_a, true);
    let j_args = node_args(joiner_rt, "joiner", &bed.addr_b, true);
    let start_initiator = || {
        let mut node = NodeProcess::spawn(NODE, Some(&bed.a.ns), &i_args);
        let ready = node.expect("ready", EVENT_TIMEOUT);
        let code = node.expect("code", EVENT_TIMEOUT);
        (node, ready, code["code"].as_str().unwrap().to_owned())
    };
    let start_joiner = || {
        let mut node = NodeProcess::spawn(NODE, Some(&bed.b.ns), &j_args);
        let ready = node.expect("ready", EVENT_TIMEOUT);
        (node, ready)
    };
    let ((mut initiator, i_ready, code), (mut joiner, j_ready)) = if joiner_first {
        let j = start_joiner();
        std::thread::sleep(HEAD_START);
        (start_initiator(), j)
    } else {
        let i = start_initiator();
        std::thread::sleep(HEAD_START);
        (i, start_joiner())
    };
    joiner.send(&format!("join {code}"));
    let j_done = joiner.expect("completed", EVENT_TIMEOUT);
    let i_done = initiator.expect("completed", EVENT_TIMEOUT);
    assert_paired((&i_ready, &i_done), (&j_ready, &j_done));
    let found_by_mdns = joiner
        .seen
        .iter()
        .any(|v| v["event"] == "discovered" && v["via"] == "Mdns" && v["peer"] == i_ready["peer"]);
    assert!(found_by_mdns, "the joiner found the initiator through mDNS");
    let elapsed = j_done["elapsed_ms"].as_f64().unwrap();
    println!("join completed in {elapsed:.1} ms");
    assert!(elapsed < 2000.0, "join took {elapsed} ms");
    joiner.quit();
    initiator.quit();
}

#[test]
fn mdns_tokio_initiator_async_std_joiner_joiner_up_first() {
    mdns_pairing(Rt::Tokio, Rt::AsyncStd, true);
}

#[test]
fn mdns_tokio_initiator_async_std_joiner_initiator_up_first() {
    mdns_pairing(Rt::Tokio, Rt::AsyncStd, false);
}

#[test]
fn mdns_async_std_initiator_tokio_joiner_joiner_up_first() {
    mdns_pairing(Rt::AsyncStd, Rt::Tokio, true);
}

#[test]
fn mdns_async_std_initiator_tokio_joiner_initiator_up_first() {
    mdns_pairing(Rt::AsyncStd, Rt::Tokio, false);
}

/// Two OS processes on two hosts, mDNS off, and a third node as the DHT's only other
/// member: the joiner is not connected to the initiator and knows nothing of it, so it
/// finds the session through the initiator's provider record (a joiner connected to the
/// initiator asks it at once, without a lookup).
#[test]
fn two_processes_pair_through_the_dht() {
    let Some(bed) = bed() else { return };
    let mut dht = NodeProcess::spawn(
        NODE,
        Some(&bed.a.ns),
        &node_args(Rt::Tokio, "device", &bed.addr_a, false),
    );
    let d_ready = dht.expect("ready", EVENT_TIMEOUT);
    let dht_addr = d_ready["addrs"][0].as_str().unwrap().to_owned();
    let mut i_args = node_args(Rt::Tokio, "initiator", &bed.addr_a, false);
    i_args.bootstrap = vec![dht_addr.clone()];
    let mut initiator = NodeProcess::spawn(NODE, Some(&bed.a.ns), &i_args);
    let i_ready = initiator.expect("ready", EVENT_TIMEOUT);
    let code = initiator.expect("code", EVENT_TIMEOUT);
    let mut j_args = node_args(Rt::Tokio, "joiner", &bed.addr_b, false);
    j_args.bootstrap = vec![dht_addr];
    let mut joiner = NodeProcess::spawn(NODE, Some(&bed.b.ns), &j_args);
    let j_ready = joiner.expect("ready", EVENT_TIMEOUT);
    joiner.send(&format!("join {}", code["code"].as_str().unwrap()));
    let discovered = loop {
        let found = joiner.expect("discovered", EVENT_TIMEOUT);
        if found["peer"] == i_ready["peer"] {
            break found;
        }
    };
    assert_eq!(discovered["via"], "Dht");
    let j_done = joiner.expect("completed", EVENT_TIMEOUT);
    let i_done = initiator.expect("completed", EVENT_TIMEOUT);
    assert_paired((&i_ready, &i_done), (&j_ready, &j_done));
    joiner.quit();
    initiator.quit();
    dht.quit();
}

/// A valid code that is not the initiator's: the joiner finds the initiator over mDNS,
/// asks it, is told "no session" (again on each retry) and gives up with
/// NoDeviceAnswered at its configured timeout. The initiator's session is not disturbed:
/// the same joiner then pairs with the right code.
#[test]
fn wrong_code_gives_no_device_answered_and_leaves_the_session_intact() {
    let Some(bed) = bed() else { return };
    const JOIN_TIMEOUT_MS: u64 = 2000;
    let mut initiator = NodeProcess::spawn(
        NODE,
        Some(&bed.a.ns),
        &node_args(Rt::AsyncStd, "initiator", &bed.addr_a, true),
    );
    let i_ready = initiator.expect("ready", EVENT_TIMEOUT);
    let code = initiator.expect("code", EVENT_TIMEOUT);
    let mut j_args = node_args(Rt::Tokio, "joiner", &bed.addr_b, true);
    j_args.join_timeout_ms = Some(JOIN_TIMEOUT_MS);
    let mut joiner = NodeProcess::spawn(NODE, Some(&bed.b.ns), &j_args);
    let j_ready = joiner.expect("ready", EVENT_TIMEOUT);

    let wrong = paircode_core::Code::generate(&mut rand_core::OsRng);
    joiner.send(&format!("join {}", wrong.words().as_str()));
    let failed = joiner.expect("failed", EVENT_TIMEOUT);
    assert_eq!(failed["kind"], "NoDeviceAnswered", "{failed}");
    let elapsed = failed["elapsed_ms"].as_f64().unwrap();
    assert!(
        elapsed < (JOIN_TIMEOUT_MS + 1000) as f64,
        "failed after {elapsed} ms, configured {JOIN_TIMEOUT_MS} ms"
    );
    let asked_initiator = joiner
        .seen
        .iter()
        .any(|v| v["event"] == "progress" && v["contacting"] == i_ready["peer"]);
    assert!(
        asked_initiator,
        "the wrong-code joiner did reach the initiator"
    );

    joiner.send(&format!("join {}", code["code"].as_str().unwrap()));
    let j_done = joiner.expect("completed", EVENT_TIMEOUT);
    let i_done = initiator.expect("completed", EVENT_TIMEOUT);
    assert_paired((&i_ready, &i_done), (&j_ready, &j_done));
    joiner.quit();
    initiator.quit();
}
