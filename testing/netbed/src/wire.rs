//! A link between two network namespaces made of two TAP devices and a thread that carries
//! Ethernet frames between them, delaying and dropping them on request.
//!
//! It stands in for `tc netem` on kernels built without `sch_netem` (no module can be
//! loaded there), so that tests of delay and loss still run instead of skipping. Frames
//! travel in both directions through the same delay queue rules, so a delay `d` adds `2d`
//! to a round trip, and a loss `p` applies to each direction independently.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::Impairment;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
/// Larger than any frame a default-MTU interface emits.
const FRAME_MAX: usize = 65_536;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags, padded to 40 bytes.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Moves the calling thread into the named network namespace (`ip netns add` creates the
/// file under /run/netns). Only this thread moves; the rest of the process stays put.
pub fn enter_netns(ns: &str) -> io::Result<()> {
    let file = File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: setns on a descriptor we own; it changes only this thread's namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn open_tap(name: &str) -> io::Result<File> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI,
        _pad: [0; 22],
    };
    for (dst, src) in req.name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: TUNSETIFF reads an ifreq we own for the duration of the call.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain fcntl flag change on our own descriptor.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(file)
}

/// What the test side can change while the wire runs.
#[derive(Debug, Default)]
struct Control {
    impairment: Mutex<Impairment>,
    /// Set when the link goes down: frames in flight are lost, as `ip link set down` drops
    /// what a netem queue holds.
    flush: AtomicBool,
    stop: AtomicBool,
}

/// A running wire; stopping it (or dropping it) closes both TAP devices, which removes them.
#[derive(Debug)]
pub struct Wire {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl Wire {
    /// Creates TAP `a_name` in namespace `a_ns` and TAP `b_name` in `b_ns`, and starts
    /// carrying frames between them. Both devices exist (down) when this returns.
    pub fn start(a_ns: &str, a_name: &str, b_ns: &str, b_name: &str) -> io::Result<Wire> {
        let control = Arc::new(Control::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (a_ns, a_name, b_ns, b_name) = (
            a_ns.to_owned(),
            a_name.to_owned(),
            b_ns.to_owned(),
            b_name.to_owned(),
        );
        let thread_control = control.clone();
        let thread = std::thread::Builder::new()
            .name(format!("wire-{a_name}"))
            .spawn(move || {
                let opened = (|| {
                    enter_netns(&a_ns)?;
                    let a = open_tap(&a_name)?;
                    enter_netns(&b_ns)?;
                    let b = open_tap(&b_name)?;
                    Ok::<_, io::Error>((a, b))
                })();
                match opened {
                    Ok((a, b)) => {
                        let _ = ready_tx.send(Ok(()));
                        carry(a, b, &thread_control);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
        let ready = ready_rx.recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "the wire thread died while opening its devices",
            ))
        });
        let mut wire = Wire {
            control,
            thread: Some(thread),
        };
        match ready {
            Ok(()) => Ok(wire),
            Err(e) => {
                wire.stop();
                Err(e)
            }
        }
    }

    pub fn set_impairment(&self, impairment: Impairment) {
        *self.control.impairment.lock().expect("impairment lock") = impairment;
    }

    /// Drops the frames in flight.
    pub fn flush(&self) {
        self.control.flush.store(true, Ordering::SeqCst);
    }

    pub fn stop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop();
    }
}

struct InFlight {
    due: Instant,
    frame: Vec<u8>,
}

/// A small xorshift generator: loss decisions need no cryptographic quality, and a
/// dependency for them would be out of proportion.
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Dice(seed | 1)
    }

    /// A uniform number in [0, 100).
    fn percent(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }
}

fn carry(mut a: File, mut b: File, control: &Control) {
    // queues[0]: frames read from a, bound for b; queues[1]: the other way.
    let mut queues: [VecDeque<InFlight>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut dice = Dice::new();
    let mut buf = vec![0u8; FRAME_MAX];
    while !control.stop.load(Ordering::SeqCst) {
        if control.flush.swap(false, Ordering::SeqCst) {
            queues.iter_mut().for_each(VecDeque::clear);
        }
        let now = Instant::now();
        let wait = queues
            .iter()
            .filter_map(|q| q.front().map(|f| f.due.saturating_duration_since(now)))
            .min()
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        let mut fds = [
            libc::pollfd {
                fd: a.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: b.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Round up so a frame due in under a millisecond is not busy-polled for.
        let timeout_ms = wait.as_micros().div_ceil(1000) as libc::c_int;
        // SAFETY: poll on two pollfds we own, for a bounded time.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        let impairment = *control.impairment.lock().expect("impairment lock");
        for (direction, source) in [&mut a, &mut b].into_iter().enumerate() {
            loop {
                match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if impairment.loss_percent > 0.0 && dice.percent() < impairment.loss_percent
                        {
                            continue;
                        }
                        queues[direction].push_back(InFlight {
                            due: Instant::now() + impairment.delay,
                            frame: buf[..n].to_vec(),
                        });
                    }
                    // WouldBlock: nothing more now; EIO: the device is down. Either way,
                    // move on to the other direction.
                    Err(_) => break,
                }
            }
        }
        let now = Instant::now();
        for (direction, sink) in [&mut b, &mut a].into_iter().enumerate() {
            while queues[direction].front().is_some_and(|f| f.due <= now) {
                let frame = queues[direction].pop_front().expect("front exists");
                // A down or full device loses the frame, like a real link would.
                let _ = sink.write(&frame.frame);
            }
        }
    }
}
