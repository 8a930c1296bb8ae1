//! `paircode send` between real daemons on loopback (mDNS off): pair once, send many times,
//! and every way a transfer can go wrong.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::AsyncWriteExt;
use paircode_cli::transfer::wire::{self, Header, Item, ReceiverFrame, SenderFrame};
use paircode_cli::transfer::{Refusal, PROTOCOL};
use paircode_core::{Code, PeerId};
use paircode_net::Node;
use paircode_netbed::daemon::{event_of, result_of, DaemonError, PASSWORD};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{daemons, stderr, Daemons, StopOnDrop, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_paircode");

fn downloads(bed: &Daemons, instance: &str) -> PathBuf {
    bed.data_dir().join(format!("{instance}-downloads"))
}

/// Starts `instance` on loopback with its own downloads directory.
fn start(bed: &Daemons, instance: &str, bootstrap_from: Option<&str>) -> TestResult {
    let dir = downloads(bed, instance);
    let mut args = vec![
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--name",
        instance,
        "--downloads",
        dir.to_str().unwrap(),
    ];
    let addr;
    if let Some(other) = bootstrap_from {
        addr = bed.addr(other)?;
        args.extend(["--bootstrap", &addr]);
    }
    bed.start_with(None, instance, &args)
}

/// Alice and Bob, each with a downloads directory, paired.
fn paired() -> Result<Daemons, DaemonError> {
    let bed = daemons()?;
    bed.init("alice")?;
    bed.init("bob")?;
    start(&bed, "alice", None)?;
    start(&bed, "bob", Some("alice"))?;
    bed.pair("alice", "bob")?;
    Ok(bed)
}

/// `instance`'s list shows the device named `other` online.
fn online(bed: &Daemons, instance: &str, other: &str) -> Result<bool, DaemonError> {
    Ok(bed
        .devices(instance)?
        .iter()
        .any(|d| d["name"] == other && d["online"] == true))
}

/// Everything under `dir` (relative names), the partial files' directory aside.
fn landed(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".paircode-partial" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn partials(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".paircode-partial"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// `send ARGS --json`: the result (of the last line, after the events).
fn sent(bed: &Daemons, from: &str, args: &[&str]) -> Result<Value, DaemonError> {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    let (events, result) = bed.json_stream(from, &all)?;
    assert_eq!(
        events.first().and_then(event_of),
        Some("sending"),
        "{events:?}"
    );
    let stored = events
        .iter()
        .filter(|e| event_of(e) == Some("stored"))
        .count();
    assert_eq!(
        stored,
        result["sent"].as_array().unwrap().len(),
        "{events:?} {result}"
    );
    Ok(result)
}

/// `send ARGS --json` failing: the error (of the last line) and the exit code, which the
/// harness checked are the same.
fn send_error(
    bed: &Daemons,
    from: &str,
    args: &[&str],
) -> Result<(Value, Option<i32>), DaemonError> {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    let (_, error, code) = bed.json_stream_error(from, &all)?;
    Ok((error, code))
}

#[test]
fn pair_once_send_files_directories_and_texts_across_restarts() -> TestResult {
    let bed = paired()?;
    let src = bed.data_dir().join("src");
    let bob_dl = downloads(&bed, "bob");
    write(&src.join("a.txt"), b"hello bob");
    write(&src.join("photos/2024/x.jpg"), &vec![7u8; 300_000]);
    write(&src.join("photos/y.jpg"), b"");

    // Bob follows what arrives.
    let mut follower = bed.spawn("bob", &["received", "--follow"])?;
    assert_eq!(event_of(&follower.next_line()?), Some("following"));

    let file = src.join("a.txt");
    let result = sent(&bed, "alice", &["bob", file.to_str().unwrap()])?;
    assert_eq!(result["sent"][0]["stored_as"], "a.txt", "{result}");

    let arriving = follower.next_line()?;
    assert_eq!(event_of(&arriving), Some("arriving"), "{arriving}");
    assert_eq!(arriving["from"], "alice", "{arriving}");
    assert_eq!(arriving["name"], "a.txt", "{arriving}");
    assert_eq!(arriving["size"], 9, "{arriving}");
    let mut event = follower.next_line()?;
    while event_of(&event) == Some("bytes") {
        event = follower.next_line()?;
    }
    assert_eq!(event_of(&event), Some("received"), "{event}");
    assert_eq!(event["name"], "a.txt", "{event}");
    assert_eq!(event["path"], bob_dl.join("a.txt").to_str().unwrap());
    signal(&follower.child, "-INT");
    let last = follower.next_line()?;
    assert!(result_of(&last).is_some(), "{last}");
    assert!(follower.finish()?.0.success());
    assert_eq!(
        result["sent"][0]["sha256"],
        hex::encode(Sha256::digest(b"hello bob")).as_str()
    );
    assert_eq!(std::fs::read(bob_dl.join("a.txt")).unwrap(), b"hello bob");

    // The same name again is numbered, never written over.
    let result = sent(&bed, "alice", &["bob", file.to_str().unwrap()])?;
    assert_eq!(result["sent"][0]["stored_as"], "a (1).txt", "{result}");

    let dir = src.join("photos");
    let result = sent(&bed, "alice", &["bob", dir.to_str().unwrap()])?;
    assert_eq!(result["sent"].as_array().unwrap().len(), 2, "{result}");
    assert_eq!(
        std::fs::read(bob_dl.join("photos/2024/x.jpg")).unwrap(),
        vec![7u8; 300_000]
    );
    assert_eq!(std::fs::read(bob_dl.join("photos/y.jpg")).unwrap(), b"");

    let result = sent(&bed, "alice", &["bob", "--text", "the wifi password is 42"])?;
    assert_eq!(result["sent"][0]["name"], "text", "{result}");

    let listed = bed.ok("bob", &["received"])?;
    assert!(listed.contains("from alice"), "{listed}");
    assert!(
        listed.contains("text: \"the wifi password is 42\""),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("a.txt → {}", bob_dl.join("a.txt").display())),
        "{listed}"
    );
    let received = bed.json("bob", &["received"])?;
    let entries = received.as_array().unwrap();
    assert_eq!(entries.len(), 5, "{received}");
    assert!(entries.iter().all(|e| e["from"] == "alice"), "{received}");
    let text = entries.last().unwrap();
    assert_eq!(text["kind"], "text");
    assert_eq!(text["text"], "the wifi password is 42");
    let first = &entries[0];
    assert_eq!(first["kind"], "file");
    assert_eq!(first["name"], "a.txt");
    assert_eq!(first["size"], 9);
    assert_eq!(first["path"], bob_dl.join("a.txt").to_str().unwrap());
    assert!(first["time"].as_u64().unwrap() > 0);

    // Without --json: one line for people.
    let said = bed.ok("alice", &["send", "bob", file.to_str().unwrap()])?;
    assert!(
        said.contains("delivered a.txt (9 B), SHA-256 verified"),
        "{said}"
    );

    // Bob turns receiving from Alice off; it stays off across restarts.
    bed.ok("bob", &["network", "receive", "alice", "off"])?;
    let devices = bed.ok("bob", &["network", "devices"])?;
    assert!(devices.contains("receiving off"), "{devices}");
    bed.stop("alice")?;
    bed.stop("bob")?;
    start(&bed, "alice", None)?;
    start(&bed, "bob", Some("alice"))?;
    assert_eq!(bed.devices("bob")?[0]["receive"], false);
    bed.eventually("alice sees bob online", || online(&bed, "alice", "bob"))?;
    let before = landed(&bob_dl);
    let (error, code) = send_error(&bed, "alice", &["bob", file.to_str().unwrap()])?;
    assert_eq!(error["kind"], "receiving_off", "{error}");
    assert_eq!(code, Some(16));
    assert_eq!(landed(&bob_dl), before);

    // On again: no code needed, in either direction.
    bed.ok("bob", &["network", "receive", "alice", "on"])?;
    let result = sent(&bed, "alice", &["bob", file.to_str().unwrap()])?;
    assert_eq!(result["sent"][0]["stored_as"], "a (3).txt", "{result}");
    write(&src.join("back.txt"), b"hi alice");
    let back = src.join("back.txt");
    let result = sent(&bed, "bob", &["alice", back.to_str().unwrap()])?;
    assert_eq!(result["sent"][0]["stored_as"], "back.txt", "{result}");
    assert_eq!(
        std::fs::read(downloads(&bed, "alice").join("back.txt")).unwrap(),
        b"hi alice"
    );
    Ok(())
}

#[test]
fn unknown_unpaired_and_offline_devices_are_each_named() -> TestResult {
    let bed = paired()?;
    bed.init("carol")?;
    start(&bed, "carol", Some("alice"))?;
    let file = bed.data_dir().join("f.txt");
    write(&file, b"data");
    let bob_dl = downloads(&bed, "bob");

    // Carol never paired with Bob: by name or by peer id, nothing is sent.
    let bob_id = bed.peer_id("bob")?;
    for who in ["bob", bob_id.as_str()] {
        let (error, code) = send_error(&bed, "carol", &[who, file.to_str().unwrap()])?;
        assert_eq!(error["kind"], "unknown_device", "{error}");
        assert_eq!(code, Some(13));
    }
    assert!(landed(&bob_dl).is_empty());

    // A downloads "directory" that is a file stops the daemon from starting, named.
    bed.init("dave")?;
    let (error, code) = bed.json_error(
        "dave",
        &[
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--downloads",
            file.to_str().unwrap(),
        ],
    )?;
    assert_eq!(error["kind"], "downloads", "{error}");
    assert_eq!(code, Some(1));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a directory"),
        "{error}"
    );

    // A path that does not exist, and a device file, are refused before anything is sent.
    let (error, code) = send_error(&bed, "alice", &["bob", "/no/such/file"])?;
    assert_eq!(error["kind"], "not_sendable", "{error}");
    assert_eq!(code, Some(2));
    let (error, _) = send_error(&bed, "alice", &["bob", "/dev/null"])?;
    assert_eq!(error["kind"], "not_sendable", "{error}");
    let long = "x".repeat(70_000);
    let (error, code) = send_error(&bed, "alice", &["bob", "--text", &long])?;
    assert_eq!(error["kind"], "text_too_large", "{error}");
    assert_eq!(code, Some(2));

    // Offline: said so, with when it was last seen.
    bed.stop("bob")?;
    let out = bed.run("alice", &["send", "bob", file.to_str().unwrap()])?;
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("bob is offline") && said.contains("last seen"),
        "{said}"
    );
    start(&bed, "bob", Some("alice"))?;
    bed.eventually("alice sees bob online", || online(&bed, "alice", "bob"))?;

    // After unpairing, neither side can send to the other.
    bed.ok("alice", &["network", "unpair", "bob"])?;
    let (error, code) = send_error(&bed, "alice", &["bob", file.to_str().unwrap()])?;
    assert_eq!(error["kind"], "unknown_device", "{error}");
    assert_eq!(code, Some(13));
    let (error, _) = send_error(&bed, "bob", &["alice", file.to_str().unwrap()])?;
    assert!(
        ["unknown_device", "not_paired_there"].contains(&error["kind"].as_str().unwrap()),
        "{error}"
    );
    assert!(landed(&bob_dl).is_empty());
    assert!(landed(&downloads(&bed, "alice")).is_empty());
    Ok(())
}

/// A test-only sender: a library node paired with Bob's daemon, speaking the transfer
/// protocol by hand (and lying when told to).
struct Raw {
    rt: tokio::runtime::Runtime,
    node: Node,
    bob: PeerId,
}

impl Raw {
    fn paired_with(bed: &Daemons, instance: &str) -> Result<Raw, DaemonError> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let addr = bed.addr(instance)?.parse().unwrap();
        let node = rt.block_on(async {
            let mut config = paircode_netbed::loopback_config("mallory");
            config.bootstrap = vec![addr];
            paircode_tokio::start(config).await.unwrap()
        });
        let (generating, words) = bed.generate(instance, &["--auto-accept"])?;
        let device = rt
            .block_on(node.join(&Code::parse(&words).unwrap()))
            .expect("joins");
        assert!(generating.finish()?.0.success());
        node.add_paired(device.peer.clone()).unwrap();
        Ok(Raw {
            rt,
            node,
            bob: device.peer,
        })
    }

    /// Offers `item` with `size`, sends `data`, then (with `finish`) the hash of `claimed`
    /// and the end, and returns every answer until the stream ends.
    fn offer(
        &self,
        item: Item,
        size: u64,
        claimed: &[u8],
        data: &[u8],
        finish: bool,
    ) -> Vec<ReceiverFrame> {
        self.rt.block_on(async {
            let mut stream = self.node.connect(&self.bob, PROTOCOL).await.unwrap();
            let header = Header { item, size };
            wire::write_frame(&mut stream, &SenderFrame::Offer(header))
                .await
                .unwrap();
            let mut answers = Vec::new();
            let first = wire::read_frame::<_, ReceiverFrame>(&mut stream)
                .await
                .unwrap();
            let ready = matches!(first, ReceiverFrame::Ready { .. });
            answers.push(first);
            if !ready {
                return answers;
            }
            for chunk in data.chunks(64 * 1024) {
                let mut framed = vec![0; wire::CHUNK_PREFIX];
                framed.extend_from_slice(chunk);
                if wire::write_chunk(&mut stream, &mut framed).await.is_err() {
                    break;
                }
            }
            if !finish {
                // Dropped mid-item: the connection "breaks".
                return answers;
            }
            let sent = SenderFrame::Sent {
                sha256: Sha256::digest(claimed).into(),
            };
            let _ = wire::write_frame(&mut stream, &sent).await;
            while let Ok(frame) = tokio::time::timeout(
                Duration::from_secs(10),
                wire::read_frame::<_, ReceiverFrame>(&mut stream),
            )
            .await
            .unwrap()
            {
                let last = matches!(frame, ReceiverFrame::Stored { .. });
                answers.push(frame);
                if last {
                    let _ = wire::write_frame(&mut stream, &SenderFrame::End).await;
                    let _ = stream.close().await;
                    break;
                }
            }
            answers
        })
    }
}

/// A file offered under `path`, always with the same file id.
impl Raw {
    /// [`Raw::offer`] to its end, tried again while the receiver answers Busy: a broken
    /// transfer's task may still be winding down (its partial file shows up as soon as it
    /// starts), as a sender that resumes at once would meet it.
    fn offer_patiently(
        &self,
        item: Item,
        size: u64,
        claimed: &[u8],
        data: &[u8],
    ) -> Vec<ReceiverFrame> {
        let mut answers = self.offer(item.clone(), size, claimed, data, true);
        let patience = Instant::now() + Duration::from_secs(10);
        while answers == [ReceiverFrame::Refused(Refusal::Busy)] && Instant::now() < patience {
            std::thread::sleep(Duration::from_millis(50));
            answers = self.offer(item.clone(), size, claimed, data, true);
        }
        answers
    }
}

fn file(path: &[&str]) -> Item {
    Item::File {
        path: path.iter().map(|s| s.to_string()).collect(),
        id: [7; 16],
    }
}

fn refusal(answers: &[ReceiverFrame]) -> Option<&Refusal> {
    answers.iter().find_map(|a| match a {
        ReceiverFrame::Refused(r) => Some(r),
        _ => None,
    })
}

#[test]
fn traversal_lies_and_resume_from_a_raw_sender() -> TestResult {
    let bed = daemons()?;
    bed.init("bob")?;
    start(&bed, "bob", None)?;
    let raw = Raw::paired_with(&bed, "bob")?;
    let dl = downloads(&bed, "bob");

    // Names that would leave the downloads directory, or reach a device.
    for bad in [
        vec!["..", "evil.txt"],
        vec!["", "etc", "evil.txt"],
        vec!["/dev/sda"],
        vec!["a", "..", "..", "evil.txt"],
        vec![".paircode-partial", "x"],
    ] {
        let answers = raw.offer(file(&bad), 4, b"evil", b"evil", true);
        assert!(
            matches!(refusal(&answers), Some(Refusal::UnsafeName { .. })),
            "{bad:?}: {answers:?}"
        );
    }
    assert!(!bed.data_dir().join("evil.txt").exists());
    assert!(!Path::new("/etc/evil.txt").exists());

    // A hash that does not match, more bytes than announced, a text too large.
    let answers = raw.offer(file(&["h.txt"]), 5, b"other", b"hello", true);
    assert_eq!(
        refusal(&answers),
        Some(&Refusal::HashMismatch),
        "{answers:?}"
    );
    let answers = raw.offer(file(&["s.txt"]), 3, b"abc", b"abcdef", true);
    assert!(
        matches!(
            refusal(&answers),
            Some(Refusal::SizeMismatch { declared: 3 })
        ),
        "{answers:?}"
    );
    let big = vec![b'x'; 100_000];
    let answers = raw.offer(Item::Text, big.len() as u64, &big, &big, true);
    assert!(
        matches!(refusal(&answers), Some(Refusal::TextTooLarge { .. })),
        "{answers:?}"
    );
    assert!(landed(&dl).is_empty(), "{:?}", landed(&dl));
    assert_eq!(partials(&dl), 0);

    // Fewer bytes than announced, then the stream breaks: kept aside, never under the name.
    let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let half = 400_000;
    let answers = raw.offer(
        file(&["big.bin"]),
        content.len() as u64,
        &content,
        &content[..half],
        false,
    );
    assert_eq!(answers, [ReceiverFrame::Ready { offset: 0 }]);
    bed.eventually("the partial file is kept", || Ok(partials(&dl) == 1))?;
    assert!(landed(&dl).is_empty());

    // Sent again, it resumes where it stopped; the hash covers the whole file. The broken
    // transfer's task may still be winding down (its partial file shows up as soon as it
    // starts): until then the receiver answers Busy, and a sender tries again.
    let answers = raw.offer_patiently(
        file(&["big.bin"]),
        content.len() as u64,
        &content,
        &content[half..],
    );
    assert_eq!(
        answers[0],
        ReceiverFrame::Ready {
            offset: half as u64
        },
        "{answers:?}"
    );
    assert_eq!(
        answers[1],
        ReceiverFrame::Stored {
            name: "big.bin".into()
        }
    );
    assert_eq!(std::fs::read(dl.join("big.bin")).unwrap(), content);
    assert_eq!(partials(&dl), 0);
    let received = bed.json("bob", &["received"])?;
    assert_eq!(received[0]["from"], "mallory", "{received}");
    assert_eq!(received[0]["resumed_from"], half, "{received}");

    // The file changed between two attempts while its id stayed (a sender that missed the
    // change): what is held is the old version's start, so the hash the sender sends after
    // the bytes, of the new version, cannot match the whole file. Refused, nothing kept.
    let old: Vec<u8> = content.iter().map(|b| b ^ 0xff).collect();
    let new: Vec<u8> = content.iter().map(|b| b ^ 0x0f).collect();
    let size = content.len() as u64;
    let answers = raw.offer(file(&["changed.bin"]), size, &old, &old[..half], false);
    assert_eq!(answers, [ReceiverFrame::Ready { offset: 0 }]);
    bed.eventually("the partial file is kept", || Ok(partials(&dl) == 1))?;
    let answers = raw.offer_patiently(file(&["changed.bin"]), size, &new, &new[half..]);
    assert_eq!(
        answers[0],
        ReceiverFrame::Ready {
            offset: half as u64
        },
        "{answers:?}"
    );
    assert_eq!(
        refusal(&answers),
        Some(&Refusal::HashMismatch),
        "{answers:?}"
    );
    bed.eventually("the mixed partial file is dropped", || {
        Ok(partials(&dl) == 0)
    })?;
    assert_eq!(landed(&dl), ["big.bin"]);
    // Sent again, it starts over and arrives whole.
    let answers = raw.offer(file(&["changed.bin"]), size, &new, &new, true);
    assert_eq!(
        answers,
        [
            ReceiverFrame::Ready { offset: 0 },
            ReceiverFrame::Stored {
                name: "changed.bin".into()
            }
        ]
    );
    assert_eq!(std::fs::read(dl.join("changed.bin")).unwrap(), new);
    assert_eq!(partials(&dl), 0);
    Ok(())
}

/// Bob's downloads directory on a 1 MiB tmpfs, mounted in a mount namespace of its own.
#[test]
fn disk_full_on_the_receiver() -> TestResult {
    let probe = Command::new("unshare").args(["--mount", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot create a mount namespace here (not root?)");
        return Ok(());
    }
    let bed = daemons()?;
    bed.init("alice")?;
    bed.init("bob")?;
    start(&bed, "alice", None)?;
    let dl = downloads(&bed, "bob");
    std::fs::create_dir_all(&dl).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{dl}' && exec '{BIN}' --instance bob start \
         --listen /ip4/127.0.0.1/tcp/0 --no-mdns --name bob --downloads '{dl}' --bootstrap '{addr}'",
        dl = dl.display(),
        addr = bed.addr("alice")?,
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("PAIRCODE_DATA_DIR", bed.data_dir())
        .env("PAIRCODE_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let _stop = StopOnDrop(&bed, "bob");
    bed.pair("alice", "bob")?;
    // What Bob's daemon sees of its downloads directory.
    let seen = PathBuf::from(format!("/proc/{}/root", bed.pid("bob")?))
        .join(dl.strip_prefix("/").unwrap());

    let small = bed.data_dir().join("small.bin");
    write(&small, &vec![1u8; 600_000]);
    sent(&bed, "alice", &["bob", small.to_str().unwrap()])?;
    let (error, code) = send_error(&bed, "alice", &["bob", small.to_str().unwrap()])?;
    assert_eq!(error["kind"], "disk_full", "{error}");
    assert_eq!(code, Some(17));
    assert!(
        error["message"].as_str().unwrap().contains("no room"),
        "{error}"
    );
    assert_eq!(landed(&seen), ["small.bin"]);
    assert_eq!(partials(&seen), 0);
    // Nothing reached the host's directory under the mount.
    assert!(landed(&dl).is_empty());
    Ok(())
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Waits, looking every millisecond, until the first bytes of a send reach `dir`: a
/// 64 MiB send takes a tenth of a second on loopback, so the harness's 100 ms polling could
/// see the first bytes only once the send is over.
fn first_bytes_arrive(dir: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while partial_bytes(dir) == 0 {
        assert!(std::time::Instant::now() < deadline, "no bytes arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn partial_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join(".paircode-partial"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn ctrl_c_cancels_cleanly_and_an_interrupted_send_resumes() -> TestResult {
    let bed = paired()?;
    let bob_dl = downloads(&bed, "bob");
    let big = bed.data_dir().join("big.bin");
    let content: Vec<u8> = (0..64u32 << 20).map(|i| (i % 253) as u8).collect();
    write(&big, &content);
    let spawn = || {
        bed.cmd("alice")
            .args(["send", "bob", big.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };

    // While a send runs, a harness error panics rather than returning: an early return
    // would leave the send unwaited.

    // Ctrl+C mid-file: the command says cancelled, Bob drops what arrived.
    let child = spawn();
    first_bytes_arrive(&bob_dl);
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    assert!(stderr(&out).contains("cancelled"), "{}", stderr(&out));
    bed.eventually("the partial file is dropped", || Ok(partials(&bob_dl) == 0))?;
    assert!(landed(&bob_dl).is_empty());

    // Killed mid-file: Bob keeps what arrived, and sending again continues from there.
    let mut child = spawn();
    first_bytes_arrive(&bob_dl);
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let kept = partial_bytes(&bob_dl);
    assert!(kept > 0 && kept < content.len() as u64, "{kept}");
    assert!(landed(&bob_dl).is_empty());
    let result = sent(&bed, "alice", &["bob", big.to_str().unwrap()])?;
    let resumed = result["sent"][0]["resumed_from"].as_u64().unwrap();
    assert!(resumed >= kept, "{result}");
    assert_eq!(std::fs::read(bob_dl.join("big.bin")).unwrap(), content);
    assert_eq!(partials(&bob_dl), 0);

    // The receiver stops mid-file: the sender says the connection was lost, and once Bob
    // is back, sending again resumes.
    let child = spawn();
    first_bytes_arrive(&bob_dl);
    bed.stop("bob").expect("bob stops");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(18), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sending again resumes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(landed(&bob_dl), ["big.bin"]);
    start(&bed, "bob", Some("alice"))?;
    bed.eventually("alice sees bob online", || online(&bed, "alice", "bob"))?;
    let result = sent(&bed, "alice", &["bob", big.to_str().unwrap()])?;
    assert!(
        result["sent"][0]["resumed_from"].as_u64().unwrap() > 0,
        "{result}"
    );
    assert_eq!(result["sent"][0]["stored_as"], "big (1).bin", "{result}");
    assert_eq!(std::fs::read(bob_dl.join("big (1).bin")).unwrap(), content);
    Ok(())
}

#[test]
fn a_file_changed_between_attempts_is_sent_afresh() -> TestResult {
    let bed = paired()?;
    let bob_dl = downloads(&bed, "bob");
    let big = bed.data_dir().join("big.bin");
    let before: Vec<u8> = (0..64u32 << 20).map(|i| (i % 253) as u8).collect();
    write(&big, &before);

    // Killed mid-file: Bob keeps what arrived of the first version.
    let mut child = bed
        .cmd("alice")
        .args(["send", "bob", big.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    first_bytes_arrive(&bob_dl);
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(partial_bytes(&bob_dl) > 0);

    // The file is rewritten in place, same size: the sender's file id changes with it, so
    // nothing of the old version is resumed, and the new one arrives whole.
    let after: Vec<u8> = before.iter().map(|b| b ^ 0x5a).collect();
    std::fs::write(&big, &after).unwrap();
    let result = sent(&bed, "alice", &["bob", big.to_str().unwrap()])?;
    assert_eq!(result["sent"][0]["resumed_from"], 0, "{result}");
    assert_eq!(result["sent"][0]["stored_as"], "big.bin", "{result}");
    assert_eq!(
        result["sent"][0]["sha256"],
        hex::encode(Sha256::digest(&after)).as_str()
    );
    assert_eq!(std::fs::read(bob_dl.join("big.bin")).unwrap(), after);
    Ok(())
}
