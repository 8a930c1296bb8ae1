//! Replays: messages captured live or in earlier sessions, sent again under the attacker's
//! own PeerId to either side. When a replayed Join draws a Challenge, the attacker follows
//! up with the Prove that went with that Join originally, i.e. it replays a whole session.

use std::collections::BTreeMap;
use std::time::Duration;

use paircode_core::messages::{Done, Message, Outcome};
use paircode_core::PeerId;
use rand_chacha::ChaCha20Rng;

use super::{Ctx, Intel};
use crate::net::Captured;
use crate::random::{chance, duration_between, index};

pub struct Replayer {
    rng: ChaCha20Rng,
    intel: Intel,
    budget: u32,
    interval: (Duration, Duration),
    /// The Prove to send when this peer answers our replayed Join with a Challenge.
    follow_up: BTreeMap<PeerId, Vec<u8>>,
    /// Recorded Challenges and Done{Accepted}s, and how much of the tap has been sorted.
    challenges: Vec<Vec<u8>>,
    accepts: Vec<Vec<u8>>,
    sorted: usize,
}

impl Replayer {
    pub fn new(
        rng: ChaCha20Rng,
        intel: Intel,
        budget: u32,
        interval: (Duration, Duration),
    ) -> Self {
        Replayer {
            rng,
            intel,
            budget,
            interval,
            follow_up: BTreeMap::new(),
            challenges: Vec::new(),
            accepts: Vec::new(),
            sorted: 0,
        }
    }

    /// Files new captures by kind once, rather than decoding the whole tap on every reply.
    fn sort(&mut self, tap: &[Captured]) {
        if self.sorted == 0 {
            let corpus = std::mem::take(&mut self.intel.corpus);
            self.file(&corpus);
            self.intel.corpus = corpus;
        }
        let start = self.sorted.min(tap.len());
        self.file(&tap[start..]);
        self.sorted = tap.len().max(1);
    }

    fn file(&mut self, captures: &[Captured]) {
        for c in captures {
            match Message::decode(&c.bytes) {
                Ok(Message::Challenge(_)) => self.challenges.push(c.bytes.clone()),
                Ok(Message::Done(Done {
                    outcome: Outcome::Accepted,
                    ..
                })) => self.accepts.push(c.bytes.clone()),
                _ => {}
            }
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let delay = duration_between(&mut self.rng, Duration::ZERO, self.interval.1);
        ctx.wake_in(delay);
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.budget == 0 {
            return;
        }
        self.budget -= 1;
        let live = chance(&mut self.rng, 0.5) || self.intel.corpus.is_empty();
        let target = self.pick_target();
        let pool: &[Captured] = if live { ctx.tap } else { &self.intel.corpus };
        if !pool.is_empty() {
            let i = index(&mut self.rng, pool.len());
            let follow_up = prove_after(pool, i);
            let bytes = pool[i].bytes.clone();
            if let Some(prove) = follow_up {
                self.follow_up.insert(target.clone(), prove);
            }
            ctx.send(&target, bytes);
        }
        let delay = duration_between(&mut self.rng, self.interval.0, self.interval.1);
        ctx.wake_in(delay);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_>, from: &PeerId, bytes: &[u8]) {
        self.sort(ctx.tap);
        match Message::decode(bytes) {
            Ok(Message::Challenge(_)) => {
                if let Some(prove) = self.follow_up.remove(from) {
                    ctx.send(from, prove);
                }
            }
            // Bob asks every device; answer him with a Challenge someone else made.
            Ok(Message::Join(_)) if !self.challenges.is_empty() => {
                let i = index(&mut self.rng, self.challenges.len());
                ctx.send(from, self.challenges[i].clone());
            }
            // Having been told "no", claim success anyway: a recorded Done{Accepted}.
            Ok(Message::Done(_)) => {
                if let Some(done) = self.accepts.first() {
                    ctx.send(from, done.clone());
                }
            }
            _ => {}
        }
    }

    fn pick_target(&mut self) -> PeerId {
        match index(&mut self.rng, 5) {
            0 | 1 => self.intel.alice.clone(),
            2 | 3 => self.intel.bob.clone(),
            _ if self.intel.peers.is_empty() => self.intel.bob.clone(),
            _ => self.intel.peers[index(&mut self.rng, self.intel.peers.len())].clone(),
        }
    }
}

/// If `pool[i]` is a Join, the next Prove its sender sent to the same recipient.
fn prove_after(pool: &[Captured], i: usize) -> Option<Vec<u8>> {
    let join = &pool[i];
    if !matches!(Message::decode(&join.bytes), Ok(Message::Join(_))) {
        return None;
    }
    pool[i + 1..]
        .iter()
        .filter(|c| c.from == join.from && c.to == join.to)
        .find(|c| matches!(Message::decode(&c.bytes), Ok(Message::Prove(_))))
        .map(|c| c.bytes.clone())
}
