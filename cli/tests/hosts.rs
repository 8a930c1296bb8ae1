//! Pairing across hosts: the real `paircode` daemon, one per host, on networks built from
//! network namespaces (`paircode_netbed::lab`): a shared bridge with mDNS, subnets behind a
//! router, lossy and slow links, cables pulled mid-handshake, a daemon killed, an
//! attacker, restarts. Each scenario logs one line.
//!
//! Needs root and iproute2 (and /dev/net/tun or netem for link faults); prints
//! "skipping: …" and passes otherwise.

#[path = "support/hosts.rs"]
mod hosts;
mod support;

use std::time::{Duration, Instant};

use hosts::{assert_paired, log, site};
use paircode_netbed::daemon::error_in;
use paircode_netbed::lab::Impairment;
use support::TestResult;

/// Scenario 1: two hosts on one bridge find each other by mDNS alone (no bootstrap
/// address anywhere) and pair with the real CLI; both lists are updated.
#[test]
fn s1_two_hosts_on_a_bridge_pair_through_mdns() -> TestResult {
    let Some(mut site) = site("scenario 1 (mDNS on a bridge)")? else {
        return Ok(());
    };
    let started = Instant::now();
    let (alice, bob) = site.alice_and_bob(false)?;
    let elapsed = site.pair(&alice, &bob)?.join;
    assert_paired(&site, &alice, &bob)?;
    log(&format!(
        "scenario 1 (mDNS on a bridge): paired, join took {} ms; test {:.1} s",
        elapsed.as_millis(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Scenario 2: alice and bob on different subnets joined by a router that forwards
/// unicast only, with mDNS on (it cannot cross), and a bootstrap host on a third subnet.
/// Both know only the bootstrap host, so bob can find alice through the DHT alone.
#[test]
fn s2_different_subnets_pair_through_the_dht_only() -> TestResult {
    let Some(mut site) = site("scenario 2 (subnets, DHT only)")? else {
        return Ok(());
    };
    let started = Instant::now();
    let (lan_a, lan_b, lan_c) = (
        site.lab.lan().unwrap(),
        site.lab.lan().unwrap(),
        site.lab.lan().unwrap(),
    );
    site.lab.router("router", &[lan_a, lan_b, lan_c]).unwrap();
    let alice = site.lab.host("alice", lan_a, false).unwrap();
    let bob = site.lab.host("bob", lan_b, false).unwrap();
    let hub = site.lab.host("hub", lan_c, false).unwrap();
    site.start(&hub, true, None)?;
    let hub_addr = site.daemons.bootstrap_addr(&hub.name)?;
    site.start(&alice, true, Some(&hub_addr))?;
    site.start(&bob, true, Some(&hub_addr))?;
    let elapsed = site.pair(&alice, &bob)?.join;
    assert_paired(&site, &alice, &bob)?;
    assert!(
        site.daemons.devices(&hub.name)?.is_empty(),
        "the bootstrap host paired with nobody"
    );
    log(&format!(
        "scenario 2 (subnets behind a router, DHT only): paired, join took {} ms; test {:.1} s",
        elapsed.as_millis(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Scenario 6: mallory, a third host, sends 1,000 wrong-code Joins at alice's session
/// (with its public discovery id, answering every challenge with a made-up proof) while
/// bob joins with the real code. Bob pairs during the attack; mallory gets nowhere.
#[test]
fn s6_real_joiner_pairs_while_a_third_host_sends_a_thousand_wrong_joins() -> TestResult {
    const WRONG_JOINS: u32 = 1000;
    let Some(mut site) = site("scenario 6 (1,000 wrong Joins)")? else {
        return Ok(());
    };
    let started = Instant::now();
    let lan = site.lab.lan().unwrap();
    let alice = site.lab.host("alice", lan, false).unwrap();
    let bob = site.lab.host("bob", lan, false).unwrap();
    let mallory = site.lab.host("mallory", lan, false).unwrap();
    site.start(&alice, true, None)?;
    site.start(&bob, true, None)?;
    let (generating, words) = site.daemons.generate(&alice.name, &["--auto-accept"])?;
    let discovery_id = paircode_core::Code::parse(&words)
        .expect("a valid code")
        .keys()
        .discovery_id
        .0;
    let target = site
        .daemons
        .addr(&alice.name)?
        .parse()
        .expect("a multiaddr");
    let attack = paircode_netbed::hammer::hammer_from(
        &mallory.ns,
        target,
        discovery_id,
        WRONG_JOINS,
        4,
        Duration::from_secs(90),
    );
    // Let the attack get going before bob joins.
    std::thread::sleep(Duration::from_millis(300));
    let (joined, elapsed) = site.daemons.join(&bob.name, &words)?;
    let attack_still_running = !attack.is_finished();
    assert!(
        joined.status.success(),
        "bob could not join under attack: {}",
        String::from_utf8_lossy(&joined.stdout)
    );
    let (status, events) = generating.finish()?;
    assert!(status.success(), "{events:?}");
    let report = attack
        .join()
        .expect("the attacker thread")
        .expect("the attack ran to the end, with no proof accepted");
    assert_eq!(report.joins, WRONG_JOINS);
    assert!(
        report.challenges + report.rejections >= WRONG_JOINS / 2,
        "{report:?}"
    );
    assert!(
        attack_still_running,
        "bob paired during the attack, not after it"
    );
    assert_paired(&site, &alice, &bob)?;
    let listed = site.daemons.devices(&alice.name)?;
    assert_eq!(listed.len(), 1, "alice paired with bob only: {listed:?}");
    log(&format!(
        "scenario 6 (1,000 wrong-code Joins from a third host): bob paired in {} ms during the \
         attack; mallory: {} challenges, {} rejections, {} failed requests, {} connection(s); \
         test {:.1} s",
        elapsed.as_millis(),
        report.challenges,
        report.rejections,
        report.failures,
        report.connections,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Scenario 7: alice and bob, paired across the bridge, both restart their daemons; each
/// finds the other again (mDNS) and shows it online.
#[test]
fn s7_paired_hosts_find_each_other_again_after_both_restart() -> TestResult {
    let Some(mut site) = site("scenario 7 (rediscovery after restart)")? else {
        return Ok(());
    };
    let started = Instant::now();
    let (alice, bob) = site.alice_and_bob(false)?;
    site.pair(&alice, &bob)?;
    site.daemons.stop(&alice.name)?;
    site.daemons.stop(&bob.name)?;
    let restarted = Instant::now();
    site.start(&alice, true, None)?;
    site.start(&bob, true, None)?;
    site.daemons
        .eventually("alice and bob show each other online again", || {
            Ok(site.daemons.online(&alice.name, &bob.name)?
                && site.daemons.online(&bob.name, &alice.name)?)
        })?;
    assert_paired(&site, &alice, &bob)?;
    log(&format!(
        "scenario 7 (both daemons restarted): online again {} ms after the restart; test {:.1} s",
        restarted.elapsed().as_millis(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Scenario 3: 20% loss and 100 ms delay on bob's link (each direction: a round trip
/// gains 200 ms and loses a frame either way): pairing still succeeds.
#[test]
fn s3_pairing_succeeds_over_a_lossy_slow_link() -> TestResult {
    let Some(mut site) = site("scenario 3 (20% loss, 100 ms delay)")? else {
        return Ok(());
    };
    let started = Instant::now();
    let (alice, bob) = site.alice_and_bob(true)?;
    let bad = Impairment {
        delay: Duration::from_millis(100),
        loss_percent: 20.0,
    };
    site.lab.impair(&bob, bad).unwrap();
    let elapsed = site.pair(&alice, &bob)?.join;
    assert_paired(&site, &alice, &bob)?;
    log(&format!(
        "scenario 3 (20% loss, 100 ms delay each way): paired, join took {} ms; test {:.1} s",
        elapsed.as_millis(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// What a list stores of each device (presence aside).
fn stored(list: &[serde_json::Value]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|d| {
            (
                d["peer_id"].to_string(),
                d["name"].to_string(),
                d["paired_at"].to_string(),
            )
        })
        .collect()
}

/// The longest a joiner may take to give up once its initiator is unreachable after the
/// joiner proved the code: the node tells the core when the connection dies or a request
/// fails (libp2p notices a dead link within its 10 s request/ping timeouts), and the core
/// then allows one more attempt before giving up.
const VERDICT_PATIENCE: Duration = Duration::from_secs(20);

/// How long a frame sits on bob's link while the handshake is held at a known step: long
/// enough for the test to pull the cable before the frame arrives.
const HOLD: Duration = Duration::from_millis(500);

/// Scenario 4: the handshake is held at a known step (bob has verified alice's Challenge
/// and sent his Prove, which is still on the slowed link) and the cable is pulled. Both
/// sides end with a clear error (bob's join fails; alice's code expires), neither stores
/// anything, and after the cable is back a new code pairs.
#[test]
fn s4_cable_pulled_mid_handshake_leaves_nothing_half_stored() -> TestResult {
    let Some(mut site) = site("scenario 4 (cable pulled mid-handshake)")? else {
        return Ok(());
    };
    const EXPIRES_SECS: u64 = 15;
    let started = Instant::now();
    let (alice, bob) = site.alice_and_bob(true)?;
    let expires = EXPIRES_SECS.to_string();
    let (generating, words) = site
        .daemons
        .generate(&alice.name, &["--auto-accept", "--expires", &expires])?;
    let hold = Impairment {
        delay: HOLD,
        loss_percent: 0.0,
    };
    site.lab.impair(&bob, hold).unwrap();
    let mut joining = site.daemons.spawn_join(&bob.name, &words)?;
    joining.wait_for("found")?;
    site.lab.set_link(&bob, false).unwrap();
    let cut = Instant::now();

    let (status, lines) = joining.finish()?;
    let code = status.code();
    let joiner_failed_after = cut.elapsed();
    assert!(
        joiner_failed_after < VERDICT_PATIENCE,
        "{joiner_failed_after:?}"
    );
    let error = error_in(&lines).unwrap_or_else(|| panic!("no error from bob: {lines:?}"));
    assert!(
        code.is_some_and(|c| c != 0),
        "bob's join exits with an error: {code:?}"
    );
    assert_eq!(error["exit"].as_i64().map(|c| c as i32), code, "{error}");
    assert!(
        !error["message"].as_str().unwrap_or("").is_empty(),
        "{error}"
    );
    let (status, events) = generating.finish()?;
    assert_eq!(status.code(), Some(8), "alice's code expires: {events:?}");
    assert!(
        error_in(&events).is_some_and(|e| e["exit"] == 8 && e["kind"] == "code_expired"),
        "{events:?}"
    );

    assert!(
        site.daemons.devices(&alice.name)?.is_empty(),
        "alice stored nothing"
    );
    assert!(
        site.daemons.devices(&bob.name)?.is_empty(),
        "bob stored nothing"
    );
    assert!(site.daemons.no_leftovers(&alice.name)? && site.daemons.no_leftovers(&bob.name)?);
    for host in [&alice, &bob] {
        let session = site
            .daemons
            .json(&host.name, &["network", "pair", "status"])?;
        assert!(session["session"].is_null(), "{}: {session}", host.name);
    }

    site.lab.impair(&bob, Impairment::default()).unwrap();
    site.lab.set_link(&bob, true).unwrap();
    site.pair(&alice, &bob)?;
    assert_paired(&site, &alice, &bob)?;
    log(&format!(
        "scenario 4 (cable pulled mid-handshake): bob failed {} ms after the cut (exit {}: {}), \
         alice's code expired (exit 8), nothing stored; a new code paired after link up; \
         test {:.1} s",
        joiner_failed_after.as_millis(),
        code.unwrap_or(-1),
        error["message"].as_str().unwrap_or(""),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Scenario 5: alice's daemon is killed (SIGKILL) mid-pairing, at the same held step as
/// scenario 4. Bob reports a clear error and stores nothing; alice's daemon starts again
/// on the same store, which opens fine with her earlier pairing (carol) intact and
/// nothing of bob.
#[test]
fn s5_initiator_killed_mid_pairing_keeps_its_store_intact() -> TestResult {
    let Some(mut site) = site("scenario 5 (initiator killed mid-pairing)")? else {
        return Ok(());
    };
    let started = Instant::now();
    let lan = site.lab.lan().unwrap();
    let alice = site.lab.host("alice", lan, false).unwrap();
    let bob = site.lab.host("bob", lan, true).unwrap();
    let carol = site.lab.host("carol", lan, false).unwrap();
    for host in [&alice, &bob, &carol] {
        site.start(host, true, None)?;
    }
    site.pair(&alice, &carol)?;
    let before = site.daemons.devices(&alice.name)?;

    let (generating, words) = site.daemons.generate(&alice.name, &["--auto-accept"])?;
    site.lab
        .impair(
            &bob,
            Impairment {
                delay: HOLD,
                loss_percent: 0.0,
            },
        )
        .unwrap();
    let mut joining = site.daemons.spawn_join(&bob.name, &words)?;
    joining.wait_for("found")?;
    let pid = site.daemons.pid(&alice.name)?;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    site.daemons.forget(&alice.name);
    let cut = Instant::now();

    let (status, lines) = joining.finish()?;
    let code = status.code();
    let joiner_failed_after = cut.elapsed();
    assert!(
        joiner_failed_after < VERDICT_PATIENCE,
        "{joiner_failed_after:?}"
    );
    let error = error_in(&lines).unwrap_or_else(|| panic!("no error from bob: {lines:?}"));
    assert!(
        code.is_some_and(|c| c != 0),
        "bob's join exits with an error: {code:?}"
    );
    assert!(
        !error["message"].as_str().unwrap_or("").is_empty(),
        "{error}"
    );
    let (status, _) = generating.finish()?;
    assert!(!status.success(), "alice's generate ends with its daemon");
    assert!(
        site.daemons.devices(&bob.name)?.is_empty(),
        "bob stored nothing"
    );

    site.lab.impair(&bob, Impairment::default()).unwrap();
    site.start(&alice, true, None)?;
    let after = site.daemons.devices(&alice.name)?;
    assert_eq!(
        stored(&after),
        stored(&before),
        "alice's list is what it was before the kill"
    );
    assert!(site.daemons.lists(&alice.name, &carol.name)?);
    assert!(site.daemons.no_leftovers(&alice.name)?);
    log(&format!(
        "scenario 5 (initiator killed mid-pairing): bob failed {} ms after the kill (exit {}: {}); \
         alice's store reopened with carol intact and nothing of bob; test {:.1} s",
        joiner_failed_after.as_millis(),
        code.unwrap_or(-1),
        error["message"].as_str().unwrap_or(""),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
