//! Virtual time: a fixed base `Instant` plus an offset that only the simulator moves.
//!
//! The state machines only ever see `base + offset`, so a run does not depend on how fast
//! the host is, and recorded times are offsets, so two runs with different bases compare.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    base: Instant,
    offset: Duration,
}

impl VirtualClock {
    pub fn new(base: Instant) -> Self {
        VirtualClock {
            base,
            offset: Duration::ZERO,
        }
    }

    pub fn now(&self) -> Instant {
        self.base + self.offset
    }

    pub fn base(&self) -> Instant {
        self.base
    }

    /// Time since the start of the run.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    /// Moves time forward to `offset`. Time never runs backwards: an event scheduled in the
    /// past would mean the simulator's queue is broken.
    pub fn advance_to(&mut self, offset: Duration) {
        assert!(
            offset >= self.offset,
            "virtual time would go back from {:?} to {offset:?}",
            self.offset
        );
        self.offset = offset;
    }

    /// The offset of an instant handed out by this clock (or computed from one).
    pub fn offset_of(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_moves_when_told() {
        let base = Instant::now();
        let mut clock = VirtualClock::new(base);
        assert_eq!(clock.now(), base);
        clock.advance_to(Duration::from_secs(5));
        assert_eq!(clock.now(), base + Duration::from_secs(5));
        assert_eq!(clock.offset_of(clock.now()), Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "go back")]
    fn never_goes_back() {
        let mut clock = VirtualClock::new(Instant::now());
        clock.advance_to(Duration::from_secs(2));
        clock.advance_to(Duration::from_secs(1));
    }
}
