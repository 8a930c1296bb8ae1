//! What every benchmark binary shares: the conditions a table was measured under,
//! summaries, ratios measured in interleaved blocks, and replacing one section of
//! BENCHMARKS.md (only when asked to, with `--write`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The system load average (1, 5 and 15 minutes) from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// The current time in UTC, to the minute.
pub fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown date".into())
}

/// The date and load average, read when measuring starts; [`Conditions::line`] adds the
/// load average at the end, since a table takes minutes to measure.
pub struct Conditions {
    started: String,
    load_before: String,
}

impl Conditions {
    pub fn now() -> Conditions {
        Conditions {
            started: now_utc(),
            load_before: load_average(),
        }
    }

    /// "Measured …, load average … at the start and … at the end (1/5/15 min)."
    pub fn line(&self) -> String {
        format!(
            "Measured {} on {} ({} cores); load average (1/5/15 min) {} at the start, {} at \
             the end.",
            self.started,
            machine(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            self.load_before,
            load_average()
        )
    }
}

/// The machine the figures come from: the project's standard build/CI machine unless
/// `PAIRCODE_BENCH_MACHINE` names another.
fn machine() -> String {
    std::env::var("PAIRCODE_BENCH_MACHINE").unwrap_or_else(|_| "the standard machine".into())
}

/// `d` in milliseconds, the unit of every table.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of `samples` (the mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mid = s.len() / 2;
    if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    }
}

/// p50, p95 and max of `samples`.
pub fn summary(samples: &[f64]) -> (f64, f64, f64) {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| s[((s.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), s[s.len() - 1])
}

/// Runs `blocks` blocks of `kinds` measurements: `measure(kind)` gives one block's samples
/// of that kind. Within a block every kind runs once, and the kind that goes first rotates
/// from block to block, so load that comes and goes hits all kinds alike. The result is
/// indexed `[kind][block]`.
pub fn interleave<E>(
    blocks: usize,
    kinds: usize,
    mut measure: impl FnMut(usize) -> Result<Vec<f64>, E>,
) -> Result<Vec<Vec<Vec<f64>>>, E> {
    let mut out = vec![Vec::with_capacity(blocks); kinds];
    for block in 0..blocks {
        for i in 0..kinds {
            let kind = (block + i) % kinds;
            out[kind].push(measure(kind)?);
        }
    }
    Ok(out)
}

/// The median over blocks of `median(numerator block) / median(denominator block)`:
/// each block's ratio compares runs made minutes apart at most, under the same load.
pub fn block_ratio(numerator: &[Vec<f64>], denominator: &[Vec<f64>]) -> f64 {
    let ratios: Vec<f64> = numerator
        .iter()
        .zip(denominator)
        .map(|(n, d)| median(n) / median(d))
        .collect();
    median(&ratios)
}

/// The smallest and largest per-block ratio, to show how far the blocks disagree.
pub fn block_ratio_range(numerator: &[Vec<f64>], denominator: &[Vec<f64>]) -> (f64, f64) {
    numerator
        .iter()
        .zip(denominator)
        .map(|(n, d)| median(n) / median(d))
        .fold((f64::INFINITY, 0.0), |(lo, hi), r| (lo.min(r), hi.max(r)))
}

/// The repository's BENCHMARKS.md.
pub fn benchmarks_md() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md")
}

/// Replaces the section that starts with `heading` (up to the next `## `) with `section`,
/// or appends it.
pub fn write_section(heading: &str, section: &str) -> std::io::Result<PathBuf> {
    let path = benchmarks_md();
    let text = std::fs::read_to_string(&path)?;
    // One blank line between this section and the next.
    let section = format!("{}\n\n", section.trim_end());
    let updated = match text.find(heading) {
        Some(start) => {
            let rest = &text[start + heading.len()..];
            let end = rest
                .find("\n## ")
                .map_or(text.len(), |i| start + heading.len() + i + 1);
            format!("{}{section}{}", &text[..start], &text[end..])
        }
        None => format!("{}\n\n{section}", text.trim_end()),
    };
    std::fs::write(&path, updated.trim_end().to_owned() + "\n")?;
    Ok(path)
}
