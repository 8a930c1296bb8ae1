//! Rate limits on the daemon's log: remote peers can make libp2p and the daemon log a line
//! per stream or connection, so each place in the code that logs (each callsite) may write
//! at most [`BURST`] lines per [`WINDOW`]; the rest are counted and reported once per
//! window in one line per callsite. With the log file's rotation (`log_file`) no peer can
//! grow the log faster than a few KiB a minute nor fill the disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::level_filters::LevelFilter;
use tracing::Metadata;
use tracing_subscriber::layer::{Context, Filter};

/// Lines one callsite may write per window.
pub const BURST: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);

struct Callsite {
    window_start: Instant,
    written: u32,
    suppressed: u64,
    target: &'static str,
    /// `file:line`, or the event's name.
    place: String,
}

/// Shared by the filter and the task that reports what it suppressed.
#[derive(Clone, Default)]
pub struct RateLimit {
    callsites: Arc<Mutex<HashMap<Identifier, Callsite>>>,
}

/// Lines a callsite could not write in a window.
#[derive(Debug, PartialEq, Eq)]
pub struct Suppressed {
    pub target: &'static str,
    pub place: String,
    pub lines: u64,
}

impl RateLimit {
    /// Whether an event from `meta` may be written at `now`.
    fn allow(&self, meta: &'static Metadata<'static>, now: Instant) -> bool {
        let mut callsites = self.callsites.lock().expect("rate limit lock");
        let site = callsites
            .entry(meta.callsite())
            .or_insert_with(|| Callsite {
                window_start: now,
                written: 0,
                suppressed: 0,
                target: meta.target(),
                place: match (meta.file(), meta.line()) {
                    (Some(file), Some(line)) => format!("{file}:{line}"),
                    _ => meta.name().to_string(),
                },
            });
        if now.duration_since(site.window_start) >= WINDOW {
            site.window_start = now;
            site.written = 0;
        }
        if site.written < BURST {
            site.written += 1;
            true
        } else {
            site.suppressed += 1;
            false
        }
    }

    /// What was suppressed since the last call, and forgets callsites that wrote nothing
    /// for a whole window (so the table stays as small as the set of active callsites).
    pub fn take_suppressed(&self, now: Instant) -> Vec<Suppressed> {
        let mut callsites = self.callsites.lock().expect("rate limit lock");
        let mut out = Vec::new();
        for site in callsites.values_mut() {
            if site.suppressed > 0 {
                out.push(Suppressed {
                    target: site.target,
                    place: site.place.clone(),
                    lines: std::mem::take(&mut site.suppressed),
                });
            }
        }
        callsites.retain(|_, site| now.duration_since(site.window_start) < WINDOW * 2);
        out
    }

    /// Logs, once per window, how many lines each callsite could not write.
    pub async fn report_every_window(self) {
        loop {
            tokio::time::sleep(WINDOW).await;
            for s in self.take_suppressed(Instant::now()) {
                tracing::warn!(
                    target: "paircode_cli::log_limit",
                    lines = s.lines,
                    from = s.target,
                    at = %s.place,
                    "log lines suppressed in the last minute (rate limit: {BURST} per minute per place)"
                );
            }
        }
    }
}

impl<S> Filter<S> for RateLimit {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        // Spans are not lines; events are limited in `event_enabled`, which sees each
        // event exactly once.
        true
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, _: &Context<'_, S>) -> bool {
        self.allow(event.metadata(), Instant::now())
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // Ask for every event: the answer changes with time.
        tracing::subscriber::Interest::sometimes()
    }

    /// Any level: the level filter it is combined with sets the bound. Without a hint the
    /// combination has none, and every `log` record and `tracing` event below that level
    /// (yamux and multistream-select log each frame at trace level) was built and offered
    /// to the filters before being dropped.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::filter::FilterExt;
    use tracing_subscriber::{EnvFilter, Registry};

    /// The limit leaves the level to the filter it is combined with, so that records
    /// below it (libp2p's trace logging) are skipped where they are made.
    #[test]
    fn the_combined_filter_keeps_the_level_bound() {
        let combined = EnvFilter::new("info,libp2p_kad=error").and(RateLimit::default());
        assert_eq!(
            Filter::<Registry>::max_level_hint(&combined),
            Some(LevelFilter::INFO)
        );
    }

    #[test]
    fn each_callsite_writes_a_burst_per_window_and_the_rest_is_counted() {
        let limit = RateLimit::default();
        let now = Instant::now();
        let meta = {
            struct Cs;
            static CS: Cs = Cs;
            static META: Metadata<'static> = tracing::metadata! {
                name: "noisy",
                target: "libp2p_request_response::handler",
                level: tracing::Level::WARN,
                fields: &[],
                callsite: &CS,
                kind: tracing::metadata::Kind::EVENT,
            };
            impl tracing::Callsite for Cs {
                fn set_interest(&self, _: tracing::subscriber::Interest) {}
                fn metadata(&self) -> &Metadata<'_> {
                    &META
                }
            }
            &META
        };
        let written = (0..1000).filter(|_| limit.allow(meta, now)).count();
        assert_eq!(written, BURST as usize);
        let suppressed = limit.take_suppressed(now);
        assert_eq!(suppressed.len(), 1);
        assert_eq!(suppressed[0].lines, 1000 - u64::from(BURST));
        assert_eq!(suppressed[0].target, "libp2p_request_response::handler");
        // A new window, a new burst.
        assert!(limit.allow(meta, now + WINDOW));
        assert!(limit.take_suppressed(now + WINDOW).is_empty());
        // Quiet for two windows: forgotten.
        limit.take_suppressed(now + WINDOW * 3);
        assert!(limit.callsites.lock().unwrap().is_empty());
    }
}
