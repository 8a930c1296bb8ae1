//! The interactive `Code:` prompt: a line editor just big enough for 12 words, where Tab
//! completes the word being typed from the word list. BIP39 words are unique in their
//! first four letters, so four letters and Tab finish any longer word.
//!
//! The terminal is switched out of canonical mode only while the line is read, and
//! switched back however the read ends (Ctrl+C included: signals are off meanwhile, so
//! that no signal can leave the terminal without echo).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

use paircode_core::code::words_starting_with;
use zeroize::Zeroizing;

/// How a prompt ended.
pub enum Typed {
    Line(Zeroizing<String>),
    /// Ctrl+D on an empty line.
    End,
    /// Ctrl+C.
    Interrupted,
}

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;
const BACKSPACE: [u8; 2] = [0x7f, 0x08];
/// The longest line the prompt takes (a code is at most 12 × 8 letters and 11 spaces). The
/// line's buffer is allocated once at this size and never grows, since growing would free
/// a copy of what was typed without wiping it; keys past it are ignored.
const MAX_LINE: usize = 256;

/// Shows `prompt` on stderr and reads one line from the terminal on stdin.
pub fn read(prompt: &str) -> io::Result<Typed> {
    let stdin = io::stdin();
    let _raw = RawMode::enter(stdin.as_raw_fd())?;
    let mut out = io::stderr();
    write!(out, "{prompt}")?;
    out.flush()?;
    let mut line = Zeroizing::new(Vec::<u8>::with_capacity(MAX_LINE));
    let mut input = stdin.lock();
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 {
            return Ok(Typed::End);
        }
        let echo: Vec<u8> = match byte[0] {
            b'\r' | b'\n' => {
                writeln!(out, "\r")?;
                let text = String::from_utf8_lossy(&line).into_owned();
                return Ok(Typed::Line(Zeroizing::new(text)));
            }
            CTRL_C => {
                writeln!(out, "^C\r")?;
                return Ok(Typed::Interrupted);
            }
            CTRL_D if line.is_empty() => {
                writeln!(out, "\r")?;
                return Ok(Typed::End);
            }
            b if BACKSPACE.contains(&b) => match pop_char(&mut line) {
                true => b"\x08 \x08".to_vec(),
                false => Vec::new(),
            },
            CTRL_U => {
                let erase = b"\x08 \x08".repeat(String::from_utf8_lossy(&line).chars().count());
                line.clear();
                erase
            }
            b'\t' => {
                let rest = completion(&line);
                if line.len() + rest.len() > MAX_LINE {
                    Vec::new()
                } else {
                    line.extend_from_slice(rest.as_bytes());
                    rest.into_bytes()
                }
            }
            _ if line.len() >= MAX_LINE => Vec::new(),
            b if b >= 0x20 => {
                line.push(b);
                vec![b]
            }
            _ => Vec::new(),
        };
        out.write_all(&echo)?;
        out.flush()?;
    }
}

/// What Tab adds: the rest of the only word starting with the last piece, and a space;
/// or, with several, as much as they all share.
fn completion(line: &[u8]) -> String {
    let text = Zeroizing::new(String::from_utf8_lossy(line).to_lowercase());
    let piece = text.rsplit(' ').next().unwrap_or("");
    if piece.is_empty() {
        return String::new();
    }
    match words_starting_with(piece).as_slice() {
        [] => String::new(),
        [only] => format!("{} ", &only[piece.len()..]),
        several => {
            let first = several[0];
            let shared = (piece.len()..first.len())
                .take_while(|&i| {
                    several
                        .iter()
                        .all(|w| w.as_bytes().get(i) == first.as_bytes().get(i))
                })
                .count();
            first[piece.len()..piece.len() + shared].to_string()
        }
    }
}

/// Removes the last character (all its UTF-8 bytes); false if there was none.
fn pop_char(line: &mut Vec<u8>) -> bool {
    let Some(last) = String::from_utf8_lossy(line).chars().last() else {
        return false;
    };
    let len = line.len().saturating_sub(last.len_utf8());
    line.truncate(len);
    true
}

/// The terminal without line editing, echo or signal keys, until dropped.
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: i32) -> io::Result<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: a valid descriptor and a termios derived from its own settings.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the settings read from this descriptor.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_completes_a_unique_start_and_the_shared_part_of_several() {
        assert_eq!(completion(b"abandon aban"), "don ");
        assert_eq!(completion(b"ABAN"), "don ");
        assert_eq!(completion(b"actr"), "ess ");
        // action, actor, actress, actual, act: nothing shared beyond "act".
        assert_eq!(completion(b"act"), "");
        assert_eq!(completion(b"abandon "), "");
        assert_eq!(completion(b"zzz"), "");
    }

    #[test]
    fn backspace_removes_whole_characters() {
        let mut line = "abé".as_bytes().to_vec();
        assert!(pop_char(&mut line));
        assert_eq!(line, b"ab");
        line.clear();
        assert!(!pop_char(&mut line));
    }
}
