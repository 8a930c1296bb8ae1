//! Ctrl+C for client commands that run until something happens.
//!
//! The listener is registered when it is made, not when it is first polled: a command
//! makes it before it asks the daemon for anything, so a Ctrl+C that arrives as soon as
//! the work has started (before the command's loop first waits) cancels the work instead
//! of killing the process with the default action. One listener serves the whole command:
//! one made afresh in each round of a loop would miss a Ctrl+C that arrives between two
//! rounds.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT, caught from the moment this exists.
pub struct Interrupt(Signal);

impl Interrupt {
    /// Starts catching SIGINT.
    ///
    /// # Panics
    /// Outside a Tokio runtime with its signal driver enabled, which every command runs in.
    pub fn listen() -> Self {
        Self(signal(SignalKind::interrupt()).expect("installing a SIGINT handler"))
    }

    /// Resolves at the next Ctrl+C (or one that arrived since the last).
    pub async fn recv(&mut self) {
        self.0.recv().await;
    }
}
