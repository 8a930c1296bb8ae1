//! What commands print on stdout: text for people, or with `--json` one envelope per line
//! for scripts.
//!
//! Every command ends with exactly one envelope line,
//! `{"schema":"paircode/1","ok":true,"result":…}` or
//! `{"schema":"paircode/1","ok":false,"error":{"kind":…,"message":…,"exit":…}}`;
//! commands that stream (pair generate, pair join) print events before it as
//! `{"schema":"paircode/1","event":"<name>",…}`.

use std::fmt::Display;
use std::io::Write;

use serde_json::{json, Value};

use crate::error::CliError;

/// The envelope's version: bumped when a field changes meaning or disappears.
pub const SCHEMA: &str = "paircode/1";

/// One line on stdout. A reader that went away (`paircode status | head -1`) already has
/// what it wanted: exit quietly with success, as Unix tools do, instead of panicking.
pub fn line(text: impl Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Nowhere left to report it: stdout is where reports go.
    }
}

/// A command's result: `value` in the envelope with `--json`, `text` otherwise.
pub fn result(json: bool, value: Value, text: impl Display) {
    if json {
        line(json!({ "schema": SCHEMA, "ok": true, "result": value }));
    } else {
        line(text);
    }
}

/// A streamed event (JSON only): `fields` with the schema and the event's name added.
pub fn event(name: &str, fields: Value) {
    let mut value = json!({ "schema": SCHEMA, "event": name });
    if let (Value::Object(all), Value::Object(extra)) = (&mut value, fields) {
        all.extend(extra);
    }
    line(value);
}

/// A command's failure: the envelope on stdout with `--json`, `error: …` on stderr
/// otherwise.
pub fn error(json: bool, error: &CliError) {
    if json {
        line(json!({ "schema": SCHEMA, "ok": false, "error": error.body() }));
    } else {
        eprintln!("error: {error}");
    }
}

/// Reads the envelope of a failed command back (a detached daemon reports its start this
/// way).
pub fn parse_error(text: &str) -> Option<crate::error::ErrorBody> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    if value["schema"] != SCHEMA || value["ok"] != false {
        return None;
    }
    serde_json::from_value(value["error"].clone()).ok()
}
