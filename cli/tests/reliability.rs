//! The daemon under load and faults (issue 11), with real processes on loopback. Each test
//! prints one line with the figure it checks (descriptors, RSS, log bytes, misses).

mod support;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use support::Bed;

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Descriptors the daemon holds open.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count()
}

/// This test process opens thousands of sockets.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on our own process with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

fn timed_status(bed: &Bed, instance: &str) -> Duration {
    let started = Instant::now();
    let status = bed.json(instance, &["status"]);
    assert_eq!(status["instance"], instance, "{status}");
    started.elapsed()
}

/// Issue 11, item 4: 300 clients each sending all but one byte of a large request, then
/// 2,000 idle clients. The daemon holds at most its 64 client places, its memory stays
/// flat, and `paircode status` still answers while the idle clients hang on.
#[test]
fn ipc_abuse_holds_no_more_than_the_client_cap() {
    raise_fd_limit();
    let bed = Bed::new();
    bed.init("alice");
    bed.start("alice", None);
    let pid = bed.pid("alice");
    let socket = bed.instance_dir("alice").join("daemon.sock");
    timed_status(&bed, "alice");
    let (rss_before, fds_before) = (rss_kib(pid), fds(pid));

    // The largest request the daemon reads, all but its last byte; and then a claim of a
    // megabyte, which is refused at once.
    let mut partial = Vec::new();
    for i in 0..300 {
        let mut s = UnixStream::connect(&socket).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let announced: usize = if i % 2 == 0 { 16 * 1024 } else { 1 << 20 };
        let _ = s.write_all(&(announced as u32).to_be_bytes());
        let _ = s.write_all(&vec![0u8; announced.min(16 * 1024) - 1]);
        partial.push(s);
    }
    let rss_partial = rss_kib(pid);
    let fds_partial = fds(pid);

    let mut idle = Vec::new();
    for _ in 0..2_000 {
        idle.push(UnixStream::connect(&socket).expect("connect"));
    }
    let fds_idle = fds(pid);
    let status_took = timed_status(&bed, "alice");
    drop(partial);
    drop(idle);
    std::thread::sleep(Duration::from_secs(2));
    let (rss_after, fds_after) = (rss_kib(pid), fds(pid));
    println!(
        "ipc abuse: daemon fds {fds_before} -> {fds_partial} (300 partial requests) -> \
         {fds_idle} (2000 idle clients) -> {fds_after}; RSS {rss_before} KiB -> \
         {rss_partial} KiB -> {rss_after} KiB; status answered in {} ms",
        status_took.as_millis()
    );
    let cap = 64 + 4;
    assert!(fds_partial <= fds_before + cap, "{fds_partial} fds");
    assert!(fds_idle <= fds_before + cap, "{fds_idle} fds");
    assert!(fds_after <= fds_before + 2, "{fds_after} fds");
    assert!(rss_partial < rss_before + 10 * 1024, "{rss_partial} KiB");
    assert!(rss_after < rss_before + 5 * 1024, "{rss_after} KiB");
    assert!(status_took < Duration::from_secs(3), "{status_took:?}");
}
