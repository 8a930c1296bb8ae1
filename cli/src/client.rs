//! The CLI's side of the socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;

use crate::error::CliError;
use crate::instance::Instance;
use crate::ipc::{encoded_len, read_frame, write_frame, Request, Response, IPC_VERSION};

/// `--verbose` on a client command: each step of its exchange with the daemon is told on
/// stderr (stdout stays the command's output). Set once by `main` before any connection; a
/// process-wide switch because every command reaches the daemon through this one type.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// One line of `--verbose` detail on stderr.
pub fn trace(text: std::fmt::Arguments<'_>) {
    if verbose() {
        eprintln!("paircode: {text}");
    }
}

pub struct Client {
    pub stream: UnixStream,
    /// When the last request went out, for the reply's delay in `--verbose`.
    sent_at: Instant,
}

impl Client {
    pub async fn connect(instance: &Instance) -> Result<Self, CliError> {
        let socket = instance.socket();
        trace(format_args!(
            "connecting to {} (IPC version {IPC_VERSION})",
            socket.display()
        ));
        let started = Instant::now();
        match UnixStream::connect(&socket).await {
            Ok(stream) => {
                trace(format_args!("connected in {}", micros(started.elapsed())));
                Ok(Client {
                    stream,
                    sent_at: Instant::now(),
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                trace(format_args!("no daemon answers there: {e}"));
                // Before `network init` there is nothing to start yet: say the first step.
                match instance.is_initialised() {
                    true => Err(CliError::NotRunning {
                        instance: instance.name.clone(),
                    }),
                    false => Err(crate::start::not_initialised(instance)),
                }
            }
            Err(source) => Err(CliError::Connect {
                path: socket,
                source,
            }),
        }
    }

    pub async fn send(&mut self, request: &Request) -> Result<(), CliError> {
        if verbose() {
            // The variant's name only: a request's fields can hold the code's words or a
            // text, which stay off the screen.
            let debug = format!("{request:?}");
            let kind = debug.split([' ', '{', '(']).next().unwrap_or_default();
            trace(format_args!(
                "→ {kind} request ({} bytes)",
                encoded_len(request) + 4
            ));
        }
        let started = Instant::now();
        write_frame(&mut self.stream, request).await?;
        self.sent_at = Instant::now();
        trace(format_args!("  written in {}", micros(started.elapsed())));
        Ok(())
    }

    pub async fn receive(&mut self) -> Result<Response, CliError> {
        let response = read_frame(&mut self.stream).await?;
        if verbose() {
            trace(format_args!(
                "← reply after {} ({} bytes): {}",
                micros(self.sent_at.elapsed()),
                encoded_len(&response) + 4,
                shortened(format!("{response:?}"), 400)
            ));
            self.sent_at = Instant::now();
        }
        match response {
            Response::Error(e) => Err(e.into()),
            other => Ok(other),
        }
    }

    /// One request, one response.
    pub async fn call(instance: &Instance, request: &Request) -> Result<Response, CliError> {
        let mut client = Client::connect(instance).await?;
        client.send(request).await?;
        client.receive().await
    }
}

/// A duration for people, in microseconds below 10 ms.
pub fn micros(d: Duration) -> String {
    match d.as_micros() {
        us @ 0..10_000 => format!("{us} µs"),
        _ => format!("{:.1} ms", d.as_secs_f64() * 1e3),
    }
}

fn shortened(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
