//! The CLI as a person meets it (issue 14): bounds checked up front, the generate screen
//! in an 80×24 terminal, completions and the man page, messages that say what to do, the
//! device name chosen once, and prompts that ask again after a mistake.

mod support;
mod term;

use std::process::Command;

use paircode_core::Code;
use paircode_netbed::daemon::{parse_json, PASSWORD, SCHEMA};
use support::{alice_and_bob, daemons, stderr, DaemonError, Daemons, StopOnDrop, TestResult};
use term::Term;

const LOOPBACK: [&str; 3] = ["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

/// A valid code nobody generated.
fn some_code() -> String {
    Code::from_entropy([7; 16]).words().to_string()
}

#[test]
fn bad_bounds_are_usage_errors_before_anything_starts() -> TestResult {
    // An instance without identity: a check that came later would fail with exit 12.
    let bed = daemons()?;
    for (args, shown) in [
        (
            &["start", "--listen", "127.0.0.1:4001"][..],
            "/ip4/0.0.0.0/tcp/0",
        ),
        (
            &["start", "--listen", "/ip4/127.0.0.1/udp/4001"],
            "/ip4/0.0.0.0/tcp/0",
        ),
        (
            &["start", "--bootstrap", "/ip4/127.0.0.1/tcp/4001"],
            "/p2p/12D3KooW",
        ),
        (
            &["start", "--bootstrap", "alice.local:4001"],
            "/p2p/12D3KooW",
        ),
        (
            &["network", "pair", "generate", "--expires", "0"],
            "1..=3600",
        ),
        (
            &["network", "pair", "generate", "--expires", "3601"],
            "1..=3600",
        ),
        (&["network", "init", "--name", ""], "device name is empty"),
        (&["network", "rename", "a\tb"], "control characters"),
    ] {
        let out = bed.run("carol", args)?;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(shown), "{args:?}: {}", stderr(&out));
        let (error, code) = bed.json_error("carol", args)?;
        assert_eq!(
            (code, error["kind"].as_str()),
            (Some(2), Some("usage")),
            "{error}"
        );
    }
    assert!(!bed.instance_dir("carol").join("daemon.pid").exists());
    // The largest lifetime is accepted (and fails only for want of a daemon).
    let out = bed.run(
        "carol",
        &["network", "pair", "generate", "--expires", "3600"],
    )?;
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    Ok(())
}

#[test]
fn generate_shows_the_real_code_and_the_time_left_and_a_qr_code_only_when_asked() -> TestResult {
    let bed = alice_and_bob()?;
    let generate = |extra: &[&str]| {
        let mut cmd = bed.cmd("alice");
        cmd.args(["network", "pair", "generate", "--expires", "2"])
            .args(extra);
        cmd
    };

    let mut term = Term::spawn(generate(&[]));
    term.expect("valid for 0:02");
    let hint = term.expect("left)");
    let (status, screen) = term.wait();
    assert_eq!(status.code(), Some(8), "{screen}");
    let words = code_on(&screen);
    Code::parse(&words).unwrap_or_else(|e| panic!("{e}: {words:?}\n{screen}"));
    assert!(!hint.contains("<the 12 words>"), "{screen}");
    assert!(!has_qr(&screen), "a QR code nobody asked for:\n{screen}");
    let code_screen = screen.split("waiting for").next().unwrap();
    assert!(code_screen.lines().count() < 24, "{screen}");
    for row in code_screen
        .lines()
        .filter(|l| l.starts_with("    ") && !l.contains("paircode"))
    {
        assert!(
            row.trim_end().chars().count() <= 80,
            "{row:?} is wider than 80 columns"
        );
    }

    let (status, screen) = Term::spawn(generate(&["--qr"])).wait();
    assert_eq!(status.code(), Some(8), "{screen}");
    assert!(has_qr(&screen), "--qr shows no QR code:\n{screen}");
    let mut by_env = generate(&[]);
    by_env.env("PAIRCODE_QR", "1");
    let (status, screen) = Term::spawn(by_env).wait();
    assert_eq!(status.code(), Some(8), "{screen}");
    assert!(has_qr(&screen), "PAIRCODE_QR=1 shows no QR code:\n{screen}");

    // Not a terminal: never a QR code, but the words and the command all the same.
    let out = generate(&["--qr"]).output().unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!has_qr(&text), "{text}");
    assert!(text.contains("paircode network pair join --code"), "{text}");
    Ok(())
}

fn has_qr(screen: &str) -> bool {
    screen.contains('▀') || screen.contains('▄') || screen.contains('█')
}

#[test]
fn completions_and_the_man_page_are_generated() -> TestResult {
    let bed = daemons()?;
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef paircode"),
        ("fish", "complete -c paircode"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = bed.ok("x", &["completions", shell])?;
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("generate"),
            "{shell} completes no subcommands"
        );
    }
    let page = bed.ok("x", &["man"])?;
    assert!(page.contains("\n.TH paircode"), "{page}");
    for text in ["PAIRCODE_DATA_DIR", "PAIRCODE_PASSWORD", "Exit codes"] {
        assert!(page.contains(text), "the man page lacks {text}");
    }
    let dir = bed.data_dir().join("man");
    std::fs::create_dir(&dir).unwrap();
    bed.ok("x", &["man", "--dir", dir.to_str().unwrap()])?;
    for page in [
        "paircode.1",
        "paircode-start.1",
        "paircode-network-pair-generate.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} not written");
    }
    let out = bed.run("x", &["completions", "tcsh"])?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[test]
fn help_shows_defaults_and_environment_but_never_the_password() -> TestResult {
    let bed = daemons()?;
    let top = bed.ok("x", &["--help"])?;
    assert!(top.contains("[env: PAIRCODE_DATA_DIR="), "{top}");
    let start = bed.ok("x", &["start", "--help"])?;
    assert!(start.contains("[env: PAIRCODE_PASSWORD]"), "{start}");
    assert!(start.contains("[default: /ip4/0.0.0.0/tcp/0]"), "{start}");
    assert!(!start.contains(PASSWORD), "the password is shown:\n{start}");
    let generate = bed.ok("x", &["network", "pair", "generate", "--help"])?;
    assert!(
        generate.contains("[default: 300]") && generate.contains("3600"),
        "{generate}"
    );
    assert!(generate.contains("PAIRCODE_QR"), "{generate}");
    Ok(())
}

#[test]
fn stop_without_a_daemon_succeeds() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    for instance in ["alice", "never-initialised"] {
        let out = bed.run(instance, &["stop"])?;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("was not running"), "{text}");
        let result = bed.json(instance, &["stop"])?;
        assert_eq!(result["was_running"], false, "{result}");
    }
    bed.start("alice", None)?;
    let result = bed.json("alice", &["stop"])?;
    assert_eq!(result["was_running"], true, "{result}");
    Ok(())
}

#[test]
fn commands_before_init_point_at_network_init() -> TestResult {
    let bed = daemons()?;
    for args in [
        &["status"][..],
        &["network", "devices"],
        &["network", "pair", "generate"],
    ] {
        let out = bed.run("carol", args)?;
        assert_eq!(out.status.code(), Some(12), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("`paircode --instance carol network init`"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    Ok(())
}

#[test]
fn init_asks_again_after_a_short_or_mismatched_password_and_says_what_is_next() -> TestResult {
    let bed = daemons()?;
    let mut cmd = bed.cmd("dave");
    cmd.env_remove("PAIRCODE_PASSWORD")
        .args(["network", "init", "--name", "dave"]);
    let mut term = Term::spawn(cmd);
    term.expect("Password: ");
    term.send_secret("short\r");
    term.expect("shorter than 8 characters; try again");
    term.expect("Password: ");
    term.send_secret("long enough one\r");
    term.expect("Repeat password: ");
    term.send_secret("long enough two\r");
    term.expect("the two passwords differ; try again");
    term.expect("Password: ");
    term.send_secret(&format!("{PASSWORD}\r"));
    term.expect("Repeat password: ");
    term.send_secret(&format!("{PASSWORD}\r"));
    term.expect("next: `paircode --instance dave start`");
    let (status, screen) = term.wait();
    assert!(status.success(), "{screen}");
    assert!(
        !screen.contains("long enough"),
        "a password was echoed:\n{screen}"
    );
    // The password that was finally accepted is the store's.
    bed.start("dave", None)?;

    // Three mistakes give up; without a terminal the first one does.
    let mut cmd = bed.cmd("erin");
    cmd.env_remove("PAIRCODE_PASSWORD")
        .args(["network", "init"]);
    let mut term = Term::spawn(cmd);
    for _ in 0..3 {
        term.expect("Password: ");
        term.send_secret("\r");
    }
    let (status, screen) = term.wait();
    assert_eq!(status.code(), Some(2), "{screen}");
    assert!(!bed.instance_dir("erin").join("identity").exists());
    let out = bed
        .cmd("erin")
        .env("PAIRCODE_PASSWORD", "1234567")
        .args(["network", "init"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("shorter than 8"), "{}", stderr(&out));
    Ok(())
}

#[test]
fn messages_name_devices_not_peer_ids() -> TestResult {
    let bed = alice_and_bob()?;
    let alice = bed.peer_id("alice")?;
    let bob = bed.peer_id("bob")?;
    let (generating, words) = bed.generate("alice", &["--auto-accept"])?;
    let joined = bed.ok(
        "bob",
        &["network", "pair", "join", "--yes", "--code", &words],
    )?;
    generating.finish()?;
    assert!(joined.contains("paired with alice"), "{joined}");
    assert!(!joined.contains(&alice), "{joined}");
    let unpaired = bed.ok("bob", &["network", "unpair", "alice"])?;
    assert!(unpaired.contains("unpaired alice"), "{unpaired}");
    assert!(
        !unpaired.contains(&alice) && !unpaired.contains(&bob),
        "{unpaired}"
    );
    Ok(())
}

#[test]
fn the_device_name_is_chosen_once_and_kept() -> TestResult {
    let bed = daemons()?;
    let init = bed.json("alice", &["network", "init", "--name", "Alice's laptop"])?;
    assert_eq!(init["name"], "Alice's laptop", "{init}");
    let name = |bed: &Daemons| -> Result<serde_json::Value, DaemonError> {
        Ok(bed.json("alice", &["status"])?["name"].clone())
    };
    let start = |bed: &Daemons, extra: &[&str]| -> Result<(), DaemonError> {
        let mut args = vec!["start"];
        args.extend_from_slice(&LOOPBACK);
        args.extend_from_slice(extra);
        bed.ok("alice", &args).map(drop)
    };

    start(&bed, &[])?;
    let _stop = StopOnDrop(&bed, "alice");
    assert_eq!(name(&bed)?, "Alice's laptop");
    // Renaming under a running daemon would leave it announcing the old name.
    let out = bed.run("alice", &["network", "rename", "kitchen"])?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    bed.ok("alice", &["stop"])?;

    let renamed = bed.json("alice", &["network", "rename", "kitchen"])?;
    assert_eq!(
        (&renamed["name"], &renamed["was"]),
        (&"kitchen".into(), &"Alice's laptop".into())
    );
    start(&bed, &[])?;
    assert_eq!(name(&bed)?, "kitchen");
    bed.ok("alice", &["stop"])?;

    // `start --name` renames too, and a later start without it keeps that name.
    start(&bed, &["--name", "den"])?;
    bed.ok("alice", &["stop"])?;
    start(&bed, &[])?;
    assert_eq!(name(&bed)?, "den");
    Ok(())
}

#[test]
fn the_code_prompt_asks_again_after_a_mistake() -> TestResult {
    let bed = daemons()?;
    bed.init("bob")?;
    let mut cmd = bed.cmd("bob");
    cmd.args(["network", "pair", "join", "--yes"]);
    let mut term = Term::spawn(cmd);
    term.expect("Code: ");
    let code = some_code();
    let typo = code.replacen(code.split(' ').next().unwrap(), "abandn", 1);
    term.send(&format!("{typo}\r"));
    term.expect("did you mean \"abandon\"");
    term.expect("Code: ");
    term.send("two words\r");
    term.expect("12 words");
    term.expect("Code: ");
    term.send(&format!("{code}\r"));
    // The code was taken: what stops it now is the daemon that is not running.
    let (status, screen) = term.wait();
    assert_eq!(status.code(), Some(3), "{screen}");
    assert!(screen.contains("paircode --instance bob start"), "{screen}");

    // Ctrl+D gives up with the last mistake's exit code.
    let mut cmd = bed.cmd("bob");
    cmd.args(["network", "pair", "join", "--yes"]);
    let mut term = Term::spawn(cmd);
    term.expect("Code: ");
    term.send("two words\r");
    term.expect("Code: ");
    term.send("\x04");
    let (status, screen) = term.wait();
    assert_eq!(status.code(), Some(7), "{screen}");
    Ok(())
}

#[test]
fn json_envelopes_of_the_new_commands() -> TestResult {
    let bed = daemons()?;
    let out = Command::new(bed.bin())
        .args(["--json", "man", "--dir", bed.data_dir().to_str().unwrap()])
        .output()
        .unwrap();
    let envelope =
        parse_json(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON envelope");
    assert_eq!(envelope["schema"], SCHEMA);
    assert_eq!(envelope["ok"], true);
    Ok(())
}

#[test]
fn join_reports_every_mistyped_word_with_its_suggestion() -> TestResult {
    let bed = daemons()?;
    let code = some_code();
    let mut words: Vec<String> = code.split(' ').map(str::to_string).collect();
    let swapped = |w: &str| {
        let mut letters: Vec<char> = w.chars().collect();
        letters.swap(1, 2);
        letters.into_iter().collect::<String>()
    };
    let (second, ninth) = (words[1].clone(), words[8].clone());
    words[1] = swapped(&second);
    words[8] = swapped(&ninth);
    words[4] = "qqqqqq".into();
    let out = bed.run(
        "bob",
        &[
            "network",
            "pair",
            "join",
            "--yes",
            "--code",
            &words.join(" "),
        ],
    )?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("3 words are not in the word list"), "{said}");
    assert!(
        said.contains(&format!(
            "word 2 ({:?}); did you mean {second:?}?",
            words[1]
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("word 9 ({:?}); did you mean {ninth:?}?", words[8])),
        "{said}"
    );
    assert!(said.contains("word 5 (\"qqqqqq\")"), "{said}");
    Ok(())
}

#[test]
fn status_prints_a_bootstrap_line_to_paste() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    bed.start("alice", None)?;
    let addr = bed.addr("alice")?;
    let text = bed.ok("alice", &["status"])?;
    let line = format!("paircode start --bootstrap {addr}");
    assert!(text.contains(&line), "{text}");
    // Pasted, it works.
    bed.init("bob")?;
    let mut args = vec!["start", "--name", "bob"];
    args.extend_from_slice(&LOOPBACK);
    args.extend(["--bootstrap", &addr]);
    bed.ok("bob", &args)?;
    let _stop = StopOnDrop(&bed, "bob");
    Ok(())
}

/// docs/systemd/paircode.service as systemd would run it: its command line, the password
/// file on standard input, SIGTERM to stop.
#[test]
fn the_systemd_unit_runs_the_daemon_with_the_password_from_a_file() -> TestResult {
    let unit = include_str!("../../docs/systemd/paircode.service");
    let setting = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("the unit has no {key}"))
    };
    let bed = daemons()?;
    bed.init("default")?;
    let home = bed.data_dir().join("home");
    let exec: Vec<&str> = setting("ExecStart=").split_whitespace().collect();
    assert_eq!(
        exec[0], "%h/.cargo/bin/paircode",
        "where `cargo install` puts it"
    );
    assert!(!exec
        .iter()
        .any(|a| a.starts_with("--password=") || *a == "--password"));
    let input = setting("StandardInput=file:").replace("%h", home.to_str().unwrap());
    std::fs::create_dir_all(std::path::Path::new(&input).parent().unwrap()).unwrap();
    std::fs::write(&input, format!("{PASSWORD}\n")).unwrap();

    let mut daemon = bed
        .cmd("default")
        .env_remove("PAIRCODE_PASSWORD")
        .args(&exec[1..])
        // Not part of the unit: this test stays on loopback.
        .args(LOOPBACK)
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _stop = StopOnDrop(&bed, "default");
    let answered = bed.eventually("the daemon answers", || {
        Ok(bed.run("default", &["status"])?.status.success())
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().unwrap();
    answered?;
    assert!(status.success(), "{status}");
    Ok(())
}

/// The words from a `generate` screen's join command.
fn code_on(screen: &str) -> String {
    screen
        .split("paircode network pair join --code")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .map(|code| code.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no join command with the code:\n{screen}"))
}

#[test]
fn ctrl_c_at_the_question_cancels() -> TestResult {
    let bed = alice_and_bob()?;
    let mut cmd = bed.cmd("alice");
    cmd.args(["network", "pair", "generate"]);
    let mut alice = Term::spawn(cmd);
    alice.expect("left)");
    let words = code_on(&alice.screen);
    let bob = bed.spawn_join("bob", &words)?;
    alice.expect("Pair with bob (");
    alice.expect("[y/N] ");
    alice.send("\x03");
    let (status, screen) = alice.wait();
    assert_eq!(status.code(), Some(11), "{screen}");
    assert!(screen.contains("cancelled"), "{screen}");
    let (bob, said) = bob.finish()?;
    assert!(!bob.success(), "{said:?}");
    assert!(bed.devices("alice")?.is_empty() && bed.devices("bob")?.is_empty());
    Ok(())
}

#[test]
fn the_joiner_sees_who_it_waits_for() -> TestResult {
    let bed = alice_and_bob()?;
    let (mut generating, words) = bed.generate("alice", &[])?;
    let mut cmd = bed.cmd("bob");
    cmd.args(["network", "pair", "join", "--yes", "--code", &words]);
    let mut bob = Term::spawn(cmd);
    bob.expect("waiting for alice to accept");
    generating.wait_for("confirm")?;
    generating.answer("y")?;
    bob.expect("paired with alice");
    let (status, screen) = bob.wait();
    assert!(status.success(), "{screen}");
    let (status, _) = generating.finish()?;
    assert!(status.success());
    Ok(())
}

#[test]
fn a_wrong_password_can_be_typed_again() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    for foreground in [false, true] {
        let mut cmd = bed.cmd("alice");
        cmd.env_remove("PAIRCODE_PASSWORD")
            .arg("start")
            .args(LOOPBACK);
        if foreground {
            cmd.arg("--foreground");
        }
        let mut term = Term::spawn(cmd);
        let _stop = StopOnDrop(&bed, "alice");
        term.expect("Password: ");
        term.send_secret("not the password\r");
        term.expect("wrong password");
        term.expect("Password: ");
        term.send_secret(&format!("{PASSWORD}\r"));
        bed.eventually("the daemon answers", || {
            Ok(bed.run("alice", &["status"])?.status.success())
        })?;
        bed.ok("alice", &["stop"])?;
        let (status, screen) = term.wait();
        assert!(status.success(), "foreground {foreground}: {screen}");
    }
    Ok(())
}

#[test]
fn an_mdns_only_daemon_logs_no_dht_warning() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    bed.start("alice", None)?;
    // A code published to a DHT without peers: Kademlia's bootstrap warns at this point.
    let out = bed.run("alice", &["network", "pair", "generate", "--expires", "2"])?;
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    bed.stop("alice")?;
    let log = std::fs::read_to_string(bed.instance_dir("alice").join("daemon.log")).unwrap();
    assert!(log.contains("daemon started"), "{log}");
    assert!(!log.contains("No known peers"), "{log}");
    Ok(())
}

#[test]
fn a_join_nobody_answers_counts_down_and_says_what_to_check() -> TestResult {
    let bed = daemons()?;
    bed.init("bob")?;
    bed.start("bob", None)?;
    let mut cmd = bed.cmd("bob");
    cmd.args(["network", "pair", "join", "--yes", "--code", &some_code()]);
    let mut term = Term::spawn(cmd);
    term.expect("searching for the device with this code… (0:");
    term.expect(" left)");
    let (status, screen) = term.wait();
    assert_eq!(status.code(), Some(9), "{screen}");
    for hint in ["generate", "--bootstrap", "UDP 5353"] {
        assert!(screen.contains(hint), "no {hint:?} in the hint:\n{screen}");
    }
    Ok(())
}

#[test]
fn the_question_closes_when_the_session_ends_under_it() -> TestResult {
    let bed = alice_and_bob()?;
    let mut cmd = bed.cmd("alice");
    cmd.args(["network", "pair", "generate"]);
    let mut alice = Term::spawn(cmd);
    alice.expect("left)");
    let words = code_on(&alice.screen);
    let bob = bed.spawn_join("bob", &words)?;
    alice.expect("[y/N] ");
    // The session ends without an answer (here `pair cancel`; the confirmation window
    // closing ends it the same way).
    bed.ok("alice", &["network", "pair", "cancel"])?;
    alice.expect("\r\nerror: the pairing was cancelled");
    let (status, screen) = alice.wait();
    assert_eq!(status.code(), Some(11), "{screen}");
    bob.finish()?;
    assert!(bed.devices("alice")?.is_empty());
    Ok(())
}

#[test]
fn tab_completes_words_at_the_code_prompt_and_ctrl_c_cancels_it() -> TestResult {
    let bed = daemons()?;
    bed.init("bob")?;
    let mut cmd = bed.cmd("bob");
    cmd.args(["network", "pair", "join", "--yes"]);
    let mut term = Term::spawn(cmd);
    term.expect("Code: ");
    let code = some_code();
    for word in code.split(' ') {
        match word.len() > 4 {
            true => term.send(&format!("{}\t", &word[..4])),
            false => term.send(&format!("{word} ")),
        }
    }
    // What the screen shows is the whole code, completed.
    term.expect(&code);
    term.send("\r");
    // Taken: what stops it is the daemon that is not running.
    let (status, screen) = term.wait();
    assert_eq!(status.code(), Some(3), "{screen}");

    let mut cmd = bed.cmd("bob");
    cmd.args(["network", "pair", "join", "--yes"]);
    let mut term = Term::spawn(cmd);
    term.expect("Code: ");
    term.send("aban\x03");
    let (status, screen) = term.wait();
    assert_eq!(status.code(), Some(11), "{screen}");
    Ok(())
}
