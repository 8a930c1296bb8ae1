//! Malformed input, sent unprompted and in answer to anything received.

use std::time::Duration;

use paircode_core::PeerId;
use rand_chacha::ChaCha20Rng;

use super::{Ctx, Intel};
use crate::garbage::{self, Garbage};
use crate::random::{chance, duration_between, index};

pub struct Noise {
    rng: ChaCha20Rng,
    intel: Intel,
    /// Messages left to send; the attacker stops so that a run ends.
    budget: u32,
    interval: (Duration, Duration),
}

impl Noise {
    pub fn new(
        rng: ChaCha20Rng,
        intel: Intel,
        budget: u32,
        interval: (Duration, Duration),
    ) -> Self {
        Noise {
            rng,
            intel,
            budget,
            interval,
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let delay = duration_between(&mut self.rng, Duration::ZERO, self.interval.1);
        ctx.wake_in(delay);
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        // Alice and Bob are the interesting targets; bystanders must survive it too.
        let target = match index(&mut self.rng, 4) {
            0 => self.intel.alice.clone(),
            1 => self.intel.bob.clone(),
            _ if self.intel.peers.is_empty() => self.intel.alice.clone(),
            _ => self.intel.peers[index(&mut self.rng, self.intel.peers.len())].clone(),
        };
        self.spray(ctx, &target);
        if self.budget > 0 {
            let delay = duration_between(&mut self.rng, self.interval.0, self.interval.1);
            ctx.wake_in(delay);
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_>, from: &PeerId, _bytes: &[u8]) {
        if chance(&mut self.rng, 0.5) {
            self.spray(ctx, from);
        }
    }

    fn spray(&mut self, ctx: &mut Ctx<'_>, to: &PeerId) {
        if self.budget == 0 {
            return;
        }
        self.budget -= 1;
        // Mutating real traffic gets closer to the decoder's edge cases than pure noise.
        let sample = match ctx.tap.len() {
            0 => garbage::default_sample(),
            n => ctx.tap[index(&mut self.rng, n)].bytes.clone(),
        };
        let kind = Garbage::pick(&mut self.rng);
        let bytes = garbage::make(kind, &sample, &mut self.rng);
        ctx.send(to, bytes);
    }
}
