//! What the user sees while waiting: a spinner on a terminal, plain lines elsewhere, JSON
//! lines with `--json` (see `output`).

use std::io::IsTerminal;
use std::time::{Duration, Instant, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

pub struct Progress {
    json: bool,
    spinner: Option<ProgressBar>,
    /// While set, the spinner counts down to it instead of counting up.
    deadline: Option<Instant>,
}

impl Progress {
    /// Shows `first` at once, or nothing until the first stage.
    pub fn new(json: bool, first: Option<&str>) -> Self {
        let mut progress = Progress {
            json,
            spinner: None,
            deadline: None,
        };
        if let Some(first) = first {
            progress.resume(first);
        }
        progress
    }

    /// Shows `first` with the time left until `deadline`, until the next stage.
    pub fn until(json: bool, first: &str, deadline: Instant) -> Self {
        let mut progress = Progress {
            json,
            spinner: None,
            deadline: Some(deadline),
        };
        progress.resume(first);
        progress
    }

    /// A new stage: the `event` line with `--json`, `text` otherwise. The countdown ends:
    /// it was for the stage before.
    pub fn stage(&mut self, event: &str, fields: serde_json::Value, text: &str) {
        self.deadline = None;
        if self.json {
            crate::output::event(event, fields);
        } else if let Some(spinner) = &self.spinner {
            spinner.set_style(self.style());
            spinner.set_message(text.to_string());
        } else {
            self.resume(text);
        }
    }

    /// A new stage with the time left until `deadline`, until the next stage.
    pub fn stage_until(
        &mut self,
        event: &str,
        fields: serde_json::Value,
        text: &str,
        deadline: Instant,
    ) {
        self.stage(event, fields, text);
        self.deadline = Some(deadline);
        if let Some(spinner) = &self.spinner {
            spinner.set_style(self.style());
        }
    }

    pub fn pause(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }

    pub fn resume(&mut self, text: &str) {
        if self.json {
            return;
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{text}");
            return;
        }
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(self.style());
        spinner.set_message(text.to_string());
        spinner.enable_steady_tick(Duration::from_millis(100));
        self.spinner = Some(spinner);
    }

    fn style(&self) -> ProgressStyle {
        match self.deadline {
            Some(deadline) => ProgressStyle::with_template("{spinner} {msg} ({left} left)")
                .expect("valid template")
                .with_key(
                    "left",
                    move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = out.write_str(&minutes(
                            deadline.saturating_duration_since(Instant::now()),
                        ));
                    },
                ),
            None => {
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template")
            }
        }
    }

    pub fn finish(&mut self) {
        self.pause();
    }
}

/// The code as a QR code in terminal characters, for a phone camera.
pub fn qr(words: &str) -> Option<String> {
    let code = qrcode::QrCode::new(words.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
    )
}

/// A duration as `m:ss`, rounded up so that `0:00` means over.
pub fn minutes(left: Duration) -> String {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Unix seconds as an RFC 3339 UTC time.
pub fn time(unix: u64) -> String {
    // humantime panics from the year 10000 on: a time that far (a damaged record) is shown
    // as the number.
    const YEAR_10000: u64 = 253_402_300_800;
    match unix {
        ..YEAR_10000 => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
        }
        _ => format!("@{unix}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_unix_time_formats_without_panicking() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::time(u64::MAX), format!("@{}", u64::MAX));
    }
}
