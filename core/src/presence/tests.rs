//! One test per transition of [`Presence`], on a virtual clock.

use super::*;

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes(&[n]).expect("non-empty")
}

fn drain(presence: &mut Presence) -> Vec<PresenceAction> {
    std::iter::from_fn(|| presence.poll_action()).collect()
}

fn send(n: u8, message: DeviceMessage) -> PresenceAction {
    PresenceAction::Send {
        peer: peer(n),
        message,
    }
}

fn seek_and_look(n: u8) -> [PresenceAction; 2] {
    [
        PresenceAction::Seek { peer: peer(n) },
        PresenceAction::Lookup { peer: peer(n) },
    ]
}

#[test]
fn nothing_to_do_without_paired_devices() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([], now);
    assert_eq!(drain(&mut p), []);
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn set_paired_reports_connected_devices_online_greets_them_and_seeks_the_rest() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1), peer(2)], now);
    let mut expected = vec![
        PresenceAction::Online(peer(1)),
        send(1, DeviceMessage::Hello),
    ];
    expected.extend(seek_and_look(2));
    assert_eq!(drain(&mut p), expected);
    assert_eq!(p.poll_timeout(), Some(now + PRESENCE_INTERVAL));

    // Registering the same set again greets again but reports nobody online twice.
    p.set_paired([peer(1), peer(2)], now);
    let mut expected = vec![send(1, DeviceMessage::Hello)];
    expected.extend(seek_and_look(2));
    assert_eq!(drain(&mut p), expected);
}

#[test]
fn set_paired_forgets_dropped_devices_silently() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);
    p.set_paired([], now);
    assert_eq!(
        drain(&mut p),
        [],
        "no Offline for a device dropped from the set"
    );
    assert_eq!(p.poll_timeout(), None);
    p.handle_disconnected(&peer(1), now);
    assert_eq!(drain(&mut p), []);
}

#[test]
fn connecting_and_disconnecting_report_presence_of_paired_devices_only() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.set_paired([peer(1)], now);
    drain(&mut p);

    p.handle_connected(&peer(1), now);
    assert_eq!(
        drain(&mut p),
        [
            PresenceAction::Online(peer(1)),
            send(1, DeviceMessage::Hello)
        ],
        "greeted at once: a device that lost the pairing says so when the two meet"
    );
    p.handle_connected(&peer(1), now);
    assert_eq!(drain(&mut p), [], "a second connection changes nothing");
    p.handle_disconnected(&peer(1), now);
    assert_eq!(drain(&mut p), [PresenceAction::Offline(peer(1))]);
    p.handle_disconnected(&peer(1), now);
    assert_eq!(drain(&mut p), []);

    p.handle_connected(&peer(9), now);
    p.handle_disconnected(&peer(9), now);
    assert_eq!(drain(&mut p), [], "strangers have no presence");
}

#[test]
fn add_paired_reports_a_connected_device_and_greets_everyone() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.handle_connected(&peer(2), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);

    let later = now + Duration::from_secs(3);
    p.add_paired(peer(2), later);
    assert_eq!(
        drain(&mut p),
        [
            PresenceAction::Online(peer(2)),
            send(1, DeviceMessage::Hello),
            send(2, DeviceMessage::Hello),
        ]
    );
    assert_eq!(p.poll_timeout(), Some(later + PRESENCE_INTERVAL));
}

#[test]
fn add_paired_cancels_a_pending_unpair_notice() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.unpair(peer(1), now);
    drain(&mut p);
    p.handle_connected(&peer(1), now);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Unpaired)]);

    p.add_paired(peer(1), now);
    assert_eq!(
        drain(&mut p),
        [
            PresenceAction::Online(peer(1)),
            send(1, DeviceMessage::Hello)
        ]
    );
    p.handle_timeout(now + PRESENCE_INTERVAL);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Hello)]);
}

#[test]
fn remove_paired_is_silent_and_stops_the_greetings() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);
    p.remove_paired(&peer(1));
    assert_eq!(drain(&mut p), []);
    p.handle_timeout(now + PRESENCE_INTERVAL);
    assert_eq!(drain(&mut p), []);
    assert_eq!(p.poll_timeout(), None, "nothing left to care about");
    p.handle_disconnected(&peer(1), now);
    assert_eq!(drain(&mut p), []);
}

#[test]
fn remove_paired_keeps_an_unpair_notice_owed() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.unpair(peer(1), now);
    drain(&mut p);
    p.remove_paired(&peer(1));
    p.handle_connected(&peer(1), now);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Unpaired)]);
}

#[test]
fn unpair_tells_a_connected_device_at_once() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);

    p.unpair(peer(1), now);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Unpaired)]);
    p.handle_disconnected(&peer(1), now);
    assert_eq!(drain(&mut p), [], "an unpaired device has no presence");
}

#[test]
fn unpair_seeks_an_absent_device_and_tells_it_when_it_connects() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.unpair(peer(1), now);
    assert_eq!(drain(&mut p), seek_and_look(1));
    assert_eq!(p.poll_timeout(), Some(now + PRESENCE_INTERVAL));

    p.handle_connected(&peer(1), now);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Unpaired)]);
}

#[test]
fn unpair_keeps_a_running_tick() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.set_paired([peer(1)], now);
    p.unpair(peer(2), now + Duration::from_secs(4));
    assert_eq!(p.poll_timeout(), Some(now + PRESENCE_INTERVAL));
}

#[test]
fn an_unpair_notice_is_repeated_until_acknowledged() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.unpair(peer(1), now);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Unpaired)]);

    // The request failed (nothing to report); the next tick sends it again.
    let tick = now + PRESENCE_INTERVAL;
    p.handle_timeout(tick);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Unpaired)]);

    p.handle_acknowledged(&peer(1), DeviceMessage::Unpaired, tick);
    assert_eq!(drain(&mut p), [PresenceAction::UnpairDelivered(peer(1))]);
    p.handle_timeout(tick + PRESENCE_INTERVAL);
    assert_eq!(drain(&mut p), []);
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn an_acknowledged_hello_changes_nothing() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);
    p.handle_acknowledged(&peer(1), DeviceMessage::Hello, now);
    assert_eq!(drain(&mut p), []);
}

#[test]
fn unpaired_from_a_paired_device_unpairs_it_here() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);

    let got = p.handle_message(&peer(1), &DeviceMessage::Unpaired.encode(), now);
    assert_eq!(got, Ok(DeviceMessage::Unpaired));
    assert_eq!(drain(&mut p), [PresenceAction::UnpairedByPeer(peer(1))]);
    p.handle_timeout(now + PRESENCE_INTERVAL);
    assert_eq!(drain(&mut p), [], "no longer greeted");
    p.handle_disconnected(&peer(1), now);
    assert_eq!(drain(&mut p), [], "no longer reported");
}

#[test]
fn hello_and_strangers_unpaired_change_nothing() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.set_paired([peer(1)], now);
    p.unpair(peer(2), now);
    drain(&mut p);
    let hello = DeviceMessage::Hello.encode();
    let unpaired = DeviceMessage::Unpaired.encode();
    assert_eq!(
        p.handle_message(&peer(1), &hello, now),
        Ok(DeviceMessage::Hello)
    );
    // Only a paired device can unpair itself; the others' notices change nothing.
    assert!(p.handle_message(&peer(2), &unpaired, now).is_ok());
    assert!(p.handle_message(&peer(9), &unpaired, now).is_ok());
    assert_eq!(drain(&mut p), []);
    p.handle_connected(&peer(2), now);
    assert_eq!(
        drain(&mut p),
        [send(2, DeviceMessage::Unpaired)],
        "still owed our notice"
    );
}

/// `/paircode/device/1` used to accept `Unpaired` followed by anything; it decodes
/// strictly now, like the pairing messages, and such a message unpairs nothing.
#[test]
fn unpaired_with_trailing_garbage_is_refused() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);

    let mut bytes = DeviceMessage::Unpaired.encode();
    bytes.extend_from_slice(b"\x00garbage");
    assert!(p.handle_message(&peer(1), &bytes, now).is_err());
    assert_eq!(drain(&mut p), []);
    p.handle_timeout(now + PRESENCE_INTERVAL);
    assert_eq!(
        drain(&mut p),
        [send(1, DeviceMessage::Hello)],
        "still paired"
    );
}

#[test]
fn found_devices_we_care_about_are_dialled_when_absent() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1), peer(2)], now);
    p.unpair(peer(3), now);
    drain(&mut p);

    for n in [1, 2, 3, 9] {
        p.handle_found(&peer(n), now);
    }
    assert_eq!(
        drain(&mut p),
        [
            PresenceAction::Dial { peer: peer(2) },
            PresenceAction::Dial { peer: peer(3) },
        ],
        "not the connected one, not a stranger"
    );
}

#[test]
fn dht_lookups_are_capped_until_one_is_done() {
    let now = Instant::now();
    let mut p = Presence::new();
    let absent: Vec<PeerId> = (1..=MAX_PRESENCE_LOOKUPS as u8 + 2).map(peer).collect();
    p.set_paired(absent.clone(), now);
    let actions = drain(&mut p);
    let lookups = |actions: &[PresenceAction]| {
        actions
            .iter()
            .filter(|a| matches!(a, PresenceAction::Lookup { .. }))
            .count()
    };
    let seeks = |actions: &[PresenceAction]| {
        actions
            .iter()
            .filter(|a| matches!(a, PresenceAction::Seek { .. }))
            .count()
    };
    assert_eq!(lookups(&actions), MAX_PRESENCE_LOOKUPS);
    assert_eq!(
        seeks(&actions),
        absent.len(),
        "every absent device is dialled"
    );

    // While all searches run, a tick only dials.
    let tick = now + PRESENCE_INTERVAL;
    p.handle_timeout(tick);
    let actions = drain(&mut p);
    assert_eq!((lookups(&actions), seeks(&actions)), (0, absent.len()));

    p.handle_lookup_done(tick);
    p.handle_lookup_done(tick);
    p.handle_timeout(tick + PRESENCE_INTERVAL);
    assert_eq!(lookups(&drain(&mut p)), 2);
}

#[test]
fn the_tick_fires_when_due_and_not_before() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(1), now);
    p.set_paired([peer(1)], now);
    drain(&mut p);

    p.handle_timeout(now + PRESENCE_INTERVAL - Duration::from_millis(1));
    assert_eq!(drain(&mut p), []);
    assert_eq!(p.poll_timeout(), Some(now + PRESENCE_INTERVAL));

    let tick = now + PRESENCE_INTERVAL;
    p.handle_timeout(tick);
    assert_eq!(drain(&mut p), [send(1, DeviceMessage::Hello)]);
    assert_eq!(p.poll_timeout(), Some(tick + PRESENCE_INTERVAL));
}

#[test]
fn devices_are_visited_in_peer_order() {
    let now = Instant::now();
    let mut p = Presence::new();
    for n in [3, 1, 2] {
        p.handle_connected(&peer(n), now);
    }
    p.set_paired([peer(3), peer(1), peer(2)], now);
    let greeted: Vec<PeerId> = drain(&mut p)
        .into_iter()
        .filter_map(|a| match a {
            PresenceAction::Send { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    assert_eq!(greeted, [peer(1), peer(2), peer(3)]);
}

/// Issue 10, item 4: a device that still counts us as paired (a one-sided pairing, say
/// after we were killed before our save) greets us; with no pairing going on here it is
/// told `Unpaired` at once, so it forgets us too.
#[test]
fn a_stranger_greeting_an_idle_device_is_told_unpaired_at_once() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(5), now);
    p.handle_message(&peer(5), &DeviceMessage::Hello.encode(), now)
        .unwrap();
    assert_eq!(
        drain(&mut p),
        [
            send(5, DeviceMessage::Unpaired),
            PresenceAction::ToldNotPaired(peer(5))
        ]
    );
    // A session that ended long ago changes nothing.
    p.handle_pairing(true, now);
    p.handle_pairing(false, now);
    let later = now + STRANGER_GRACE;
    p.handle_message(&peer(5), &DeviceMessage::Hello.encode(), later)
        .unwrap();
    assert_eq!(drain(&mut p).len(), 2);
}

/// Around a pairing the initiator's first `Hello` may overtake our own save: a stranger is
/// told only after it kept greeting for the grace period.
#[test]
fn a_stranger_greeting_while_pairing_is_told_unpaired_after_the_grace_period() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_pairing(true, now);
    p.handle_connected(&peer(5), now);
    let hello = DeviceMessage::Hello.encode();
    assert_eq!(
        p.handle_message(&peer(5), &hello, now),
        Ok(DeviceMessage::Hello)
    );
    assert_eq!(
        drain(&mut p),
        [],
        "the first greeting may overtake our own save"
    );
    let almost = now + STRANGER_GRACE - Duration::from_millis(1);
    p.handle_message(&peer(5), &hello, almost).unwrap();
    assert_eq!(drain(&mut p), []);
    p.handle_message(&peer(5), &hello, now + STRANGER_GRACE)
        .unwrap();
    assert_eq!(
        drain(&mut p),
        [
            send(5, DeviceMessage::Unpaired),
            PresenceAction::ToldNotPaired(peer(5))
        ]
    );
    // Its acknowledgement is no delivered notice of ours.
    p.handle_acknowledged(&peer(5), DeviceMessage::Unpaired, now + STRANGER_GRACE);
    assert_eq!(drain(&mut p), []);
    assert_eq!(
        p.poll_timeout(),
        None,
        "a stranger is no device we care about"
    );
}

/// The joiner's save finished within the grace period: the pairing stands.
#[test]
fn a_stranger_that_becomes_paired_in_time_is_never_told() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_pairing(true, now);
    p.handle_connected(&peer(5), now);
    let hello = DeviceMessage::Hello.encode();
    p.handle_message(&peer(5), &hello, now).unwrap();
    p.add_paired(peer(5), now + Duration::from_secs(1));
    drain(&mut p);
    p.handle_message(&peer(5), &hello, now + STRANGER_GRACE * 2)
        .unwrap();
    assert_eq!(drain(&mut p), []);
    // The session ended; unpaired later by the user, then greeted again within the grace
    // after the session: a fresh grace period.
    let ended = now + STRANGER_GRACE * 3;
    p.handle_pairing(false, ended);
    p.remove_paired(&peer(5));
    p.handle_message(&peer(5), &hello, ended).unwrap();
    assert_eq!(drain(&mut p), []);
}

/// What is remembered of a stranger lives in its connection entry: a disconnect forgets
/// it (the grace starts again), and a peer that is not connected leaves nothing behind.
#[test]
fn strangers_are_remembered_only_while_connected() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_pairing(true, now);
    let hello = DeviceMessage::Hello.encode();
    for n in 10..200u8 {
        p.handle_message(&peer(n), &hello, now).unwrap();
    }
    assert!(
        p.connected.is_empty(),
        "greetings without a connection add nothing"
    );
    p.handle_connected(&peer(5), now);
    p.handle_message(&peer(5), &hello, now).unwrap();
    p.handle_disconnected(&peer(5), now);
    p.handle_connected(&peer(5), now + STRANGER_GRACE);
    p.handle_message(&peer(5), &hello, now + STRANGER_GRACE)
        .unwrap();
    assert_eq!(
        drain(&mut p),
        [],
        "the grace starts again after a reconnect"
    );
    assert_eq!(p.connected.len(), 1);
}

/// A device owed our notice gets it on the tick anyway; its Hello adds nothing.
#[test]
fn a_device_owed_a_notice_is_not_a_stranger() {
    let now = Instant::now();
    let mut p = Presence::new();
    p.handle_connected(&peer(2), now);
    p.unpair(peer(2), now);
    drain(&mut p);
    let hello = DeviceMessage::Hello.encode();
    p.handle_message(&peer(2), &hello, now).unwrap();
    p.handle_message(&peer(2), &hello, now + STRANGER_GRACE)
        .unwrap();
    assert_eq!(drain(&mut p), []);
    p.handle_acknowledged(&peer(2), DeviceMessage::Unpaired, now);
    assert_eq!(drain(&mut p), [PresenceAction::UnpairDelivered(peer(2))]);
}
