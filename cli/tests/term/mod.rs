//! A pseudo-terminal of 80×24 for tests of what a person sees: the program gets it as its
//! standard streams and as its controlling terminal (password prompts open /dev/tty); the
//! test reads the screen's bytes as they come and types.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long `expect` and `wait` wait: longer than the CLI's own 30 s connect timeout, so a
/// command that gives up after it still ends in time on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct Term {
    master: File,
    child: Child,
    output: Receiver<Vec<u8>>,
    /// Everything the program wrote so far.
    pub screen: String,
    /// Where the next `expect` starts looking.
    seen: usize,
}

impl Term {
    pub fn spawn(mut cmd: Command) -> Term {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: two out-parameters and a valid winsize; no name buffer, default termios.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two fresh descriptors that nothing else owns.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stream = || Stdio::from(slave.try_clone().expect("dup the terminal"));
        cmd.stdin(stream()).stdout(stream()).stderr(stream());
        // SAFETY: setsid and ioctl are async-signal-safe; the child gets a session of its
        // own whose controlling terminal is the pty on its stdin.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("the program starts");
        // The program's copies must be the last ones: reading ends when it closes them.
        drop(cmd);
        drop(slave);
        let (tx, output) = mpsc::channel();
        let mut reader = master.try_clone().expect("dup the master");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every copy of the terminal is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Term {
            master,
            child,
            output,
            screen: String::new(),
            seen: 0,
        }
    }

    /// Waits until `text` appears after what earlier calls found; returns what came
    /// before it.
    pub fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(at) = self.screen[self.seen..].find(text) {
                let before = self.screen[self.seen..self.seen + at].to_string();
                self.seen += at + text.len();
                return before;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.screen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{text:?} did not appear; the screen:\n{}", self.screen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the program ended without {text:?}; the screen:\n{}",
                        self.screen
                    )
                }
            }
        }
    }

    /// Types `text` (`\r` is the Enter key, `\x04` Ctrl+D at the start of a line).
    pub fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .and_then(|()| self.master.flush())
            .expect("typing");
    }

    /// Types a secret at a password prompt once the program has turned echo off: the
    /// prompt is printed before echo goes off, and text typed in between would be shown
    /// (a person is never that fast).
    pub fn send_secret(&mut self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.echoes() {
            assert!(
                Instant::now() < deadline,
                "echo never went off; the screen:\n{}",
                self.screen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.send(text);
    }

    /// The terminal echoes what is typed (the master's termios are the terminal's).
    fn echoes(&self) -> bool {
        // SAFETY: termios is plain data, for which all zeros is a valid value.
        let mut termios: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a descriptor this owns and a termios to fill.
        let got = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut termios) };
        assert_eq!(got, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        termios.c_lflag & libc::ECHO != 0
    }

    /// Waits for the program to end; returns its status and the whole screen.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // What it wrote last may still be in the channel.
                while let Ok(bytes) = self.output.recv_timeout(Duration::from_millis(200)) {
                    self.screen.push_str(&String::from_utf8_lossy(&bytes));
                }
                return (status, std::mem::take(&mut self.screen));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the program did not end; the screen:\n{}", self.screen);
            }
            while let Ok(bytes) = self.output.try_recv() {
                self.screen.push_str(&String::from_utf8_lossy(&bytes));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
