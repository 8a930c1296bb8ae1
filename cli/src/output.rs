//! What commands print on stdout: text for people, or with `--json` one envelope per line
//! for scripts.
//!
//! Every command ends with exactly one envelope line,
//! `{"schema":"paircode/1","ok":true,"result":…}` or
//! `{"schema":"paircode/1","ok":false,"error":{"kind":…,"message":…,"exit":…}}`;
//! commands that stream (pair generate, pair join, send) print events before it as
//! `{"schema":"paircode/1","event":"<name>",…}`.

use std::fmt::Display;
use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use crate::error::{CliError, ErrorBody};

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
        // A full disk under a redirect, say: the output is incomplete, so say so.
        let _ = writeln!(std::io::stderr(), "error: writing the output: {e}");
        std::process::exit(1);
    }
}

/// The envelope, fields in this order.
#[derive(Serialize)]
struct Envelope<'a> {
    schema: &'static str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorBody>,
}

#[derive(Serialize)]
struct Event<'a> {
    schema: &'static str,
    event: &'a str,
    #[serde(flatten)]
    fields: Value,
}

fn print(value: &impl Serialize) {
    line(serde_json::to_string(value).expect("JSON values serialise"));
}

/// The success envelope around `value`, as one line of JSON.
pub fn result_json(value: Value) -> String {
    serde_json::to_string(&Envelope {
        schema: SCHEMA,
        ok: true,
        result: Some(value),
        error: None,
    })
    .expect("JSON values serialise")
}

/// An event line: `fields` (an object) after the schema and the event's name.
pub fn event_json(name: &str, fields: Value) -> String {
    serde_json::to_string(&Event {
        schema: SCHEMA,
        event: name,
        fields,
    })
    .expect("JSON values serialise")
}

/// A command's result: `value` in the envelope with `--json`, `text` otherwise.
pub fn result(json: bool, value: Value, text: impl Display) {
    if json {
        line(result_json(value));
    } else {
        line(text);
    }
}

/// A streamed event (JSON only).
pub fn event(name: &str, fields: Value) {
    line(event_json(name, fields));
}

/// A command's failure: the envelope on stdout with `--json`, `error: …` on stderr
/// otherwise.
pub fn error(json: bool, error: &CliError) {
    if json {
        print(&Envelope {
            schema: SCHEMA,
            ok: false,
            result: None,
            error: Some(&error.body()),
        });
    } else {
        eprintln!("error: {error}");
        if let Some(hint) = error.hint() {
            eprintln!("{hint}");
        }
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
