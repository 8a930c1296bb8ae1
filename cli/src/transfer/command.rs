//! The CLI's side of `paircode send`, `paircode received` and `paircode network receive`:
//! asks the daemon, shows progress, prints the outcome.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use paircode_core::name::escaped;
use tokio::sync::mpsc;

use super::log::{Arriving, ReceivedEntry, ReceivedWhat};
use super::send::{Delivered, Progress};
use super::TransferError;
use crate::client::Client;
use crate::error::CliError;
use crate::instance::Instance;
use crate::ipc::{read_frame, write_frame, DaemonError, FrameError, Request, Response};
use crate::output;

/// Sends `paths` (or `text`) to `device` through the daemon. Ctrl+C cancels: the daemon
/// tells the device, which drops what it received of the item under way.
pub async fn send(
    instance: &Instance,
    json: bool,
    device: String,
    paths: Vec<PathBuf>,
    text: Option<String>,
) -> Result<(), CliError> {
    // Refused here as the daemon would refuse it: a longer text would not fit in a request
    // (`MAX_REQUEST_LEN`), and the daemon would drop the connection unanswered.
    if let Some(text) = &text {
        let size = text.len() as u64;
        if size > super::receive::MAX_TEXT {
            let max = super::receive::MAX_TEXT;
            return Err(DaemonError::from(TransferError::TextTooLarge { size, max }).into());
        }
    }
    // The daemon does not share our working directory.
    let paths: Vec<PathBuf> = paths
        .into_iter()
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .collect();
    let request = Request::Send {
        device: device.clone(),
        paths,
        text,
    };
    if crate::ipc::encoded_len(&request) > crate::ipc::MAX_REQUEST_LEN {
        return Err(CliError::Usage(crate::error::UsageError::SendTooLarge {
            max: crate::ipc::MAX_REQUEST_LEN,
        }));
    }
    let client = Client::connect(instance).await?;
    let mut interrupt = crate::interrupt::Interrupt::listen();
    let (mut reader, mut writer) = client.stream.into_split();
    // Reaching a device that went away can take until the node's connect timeout.
    let mut connecting =
        crate::progress::Progress::new(json, Some(&format!("connecting to {device}…")));
    write_frame(&mut writer, &request).await?;
    // Frames are read by their own task so that Ctrl+C never interrupts one half-read.
    let (tx, mut responses) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let response = read_frame::<_, Response>(&mut reader).await;
            let last = response.is_err();
            if tx.send(response).is_err() || last {
                break;
            }
        }
    });
    let mut bar = Bar::hidden();
    let mut cancelling = false;
    loop {
        let response = tokio::select! {
            response = responses.recv() => response.unwrap_or(Err(FrameError::Closed))?,
            _ = interrupt.recv(), if !cancelling => {
                cancelling = true;
                bar.message("cancelling…");
                write_frame(&mut writer, &Request::SendCancel).await?;
                continue;
            }
        };
        match response {
            Response::Sending {
                device,
                items,
                bytes,
                skipped,
            } => {
                connecting.finish();
                for path in &skipped {
                    if !json {
                        eprintln!("skipped {} (not a file or directory)", path.display());
                    }
                }
                if json {
                    output::event(
                        "sending",
                        serde_json::json!({
                            "device": device, "items": items, "bytes": bytes, "skipped": skipped,
                        }),
                    );
                } else {
                    eprintln!(
                        "sending {items} item(s), {} to {}",
                        HumanBytes(bytes),
                        escaped(&device.name)
                    );
                }
                bar = Bar::new(json, bytes);
            }
            Response::Transfer(progress) => match progress {
                Progress::Item { name, size, offset } => {
                    if offset > 0 {
                        bar.println(&format!(
                            "resuming {name} at {} of {}",
                            HumanBytes(offset),
                            HumanBytes(size)
                        ));
                    }
                    bar.message(&name);
                }
                Progress::Bytes { done } => bar.position(done),
                Progress::Stored(delivered) => {
                    if json {
                        output::event("stored", serde_json::json!(delivered));
                    } else {
                        bar.println(&format!("sent {}", delivered.name));
                    }
                }
            },
            Response::Sent(delivered) => {
                bar.finish();
                print_sent(json, &delivered);
                return Ok(());
            }
            Response::Error(e) => {
                connecting.finish();
                bar.finish();
                return Err(e.into());
            }
            other => {
                connecting.finish();
                bar.finish();
                return Err(CliError::Unexpected(Box::new(other)));
            }
        }
    }
}

fn print_sent(json: bool, delivered: &[Delivered]) {
    let bytes: u64 = delivered.iter().map(|d| d.size).sum();
    let text = match delivered {
        [one] => format!(
            "delivered {} ({}), SHA-256 verified",
            one.name,
            HumanBytes(one.size)
        ),
        many => format!(
            "delivered {} items ({}), SHA-256 verified",
            many.len(),
            HumanBytes(bytes)
        ),
    };
    output::result(
        json,
        serde_json::json!({ "sent": delivered, "bytes": bytes }),
        text,
    );
}

/// A progress bar with throughput and ETA on a terminal; nothing otherwise.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn hidden() -> Self {
        Bar(None)
    }

    fn new(json: bool, total: u64) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }

    fn message(&self, text: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(text.to_string());
        }
    }

    fn position(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    /// A line above the bar, or on stderr without one.
    fn println(&self, text: &str) {
        match &self.0 {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// `paircode received [--follow]`.
pub async fn received(instance: &Instance, json: bool, follow: bool) -> Result<(), CliError> {
    let entries = match Client::call(instance, &Request::Received).await? {
        Response::Received(entries) => entries,
        other => return Err(CliError::Unexpected(Box::new(other))),
    };
    if follow {
        return follow_received(instance, json, &entries).await;
    }
    if json {
        output::result(json, serde_json::json!(entries), "");
        return Ok(());
    }
    if entries.is_empty() {
        output::line("nothing received yet");
        return Ok(());
    }
    for entry in &entries {
        output::line(describe(entry));
    }
    Ok(())
}

/// What arrived so far, then each transfer as it arrives (a progress bar per item on a
/// terminal; events with `--json`), until Ctrl+C.
async fn follow_received(
    instance: &Instance,
    json: bool,
    entries: &[ReceivedEntry],
) -> Result<(), CliError> {
    for entry in entries {
        match json {
            true => output::event("received", serde_json::json!(entry)),
            false => output::line(describe(entry)),
        }
    }
    let mut client = Client::connect(instance).await?;
    let mut interrupt = crate::interrupt::Interrupt::listen();
    client.send(&Request::FollowReceived).await?;
    match client.receive().await? {
        Response::Done => {}
        other => return Err(CliError::Unexpected(Box::new(other))),
    }
    if json {
        output::event("following", serde_json::json!({}));
    }
    let mut bar = Bar::hidden();
    loop {
        let response = tokio::select! {
            response = client.receive() => response?,
            _ = interrupt.recv() => break,
        };
        let Response::Arriving(event) = response else {
            bar.finish();
            return Err(CliError::Unexpected(Box::new(response)));
        };
        if json {
            let (name, fields) = match &event {
                Arriving::Started { .. } => {
                    ("arriving", serde_json::json!(event)["started"].clone())
                }
                Arriving::Bytes { .. } => ("bytes", serde_json::json!(event)["bytes"].clone()),
                Arriving::Arrived(entry) => ("received", serde_json::json!(entry)),
                Arriving::Failed { .. } => ("failed", serde_json::json!(event)["failed"].clone()),
            };
            output::event(name, fields);
            continue;
        }
        match event {
            Arriving::Started {
                from,
                name,
                size,
                offset,
            } => {
                bar.finish();
                bar = Bar::new(json, size);
                bar.position(offset);
                bar.message(&name);
                if bar.0.is_none() {
                    eprintln!(
                        "receiving {name} ({}) from {}",
                        HumanBytes(size),
                        escaped(&from)
                    );
                }
            }
            Arriving::Bytes { done, .. } => bar.position(done),
            Arriving::Arrived(entry) => {
                bar.finish();
                output::line(describe(&entry));
            }
            Arriving::Failed { from, error } => {
                bar.finish();
                eprintln!("from {}: {error}", escaped(&from));
            }
        }
    }
    bar.finish();
    if json {
        output::result(json, serde_json::json!({ "followed": true }), "");
    }
    Ok(())
}

fn describe(entry: &ReceivedEntry) -> String {
    let head = format!(
        "{}  from {}  {:>10}  sha256 {}…",
        crate::progress::time(entry.time),
        escaped(&entry.from),
        HumanBytes(entry.size).to_string(),
        &entry.sha256[..entry.sha256.len().min(12)],
    );
    match &entry.what {
        ReceivedWhat::File { name, path } => format!("{head}  {name} → {}", path.display()),
        ReceivedWhat::Text { text } => format!("{head}  text: {text:?}"),
    }
}

/// `paircode network receive DEVICE on|off`.
pub async fn set_receive(
    instance: &Instance,
    json: bool,
    who: String,
    on: bool,
) -> Result<(), CliError> {
    match Client::call(instance, &Request::SetReceive { who, on }).await? {
        Response::ReceiveSet(device) => {
            let text = format!(
                "receiving from {} ({}) is {}",
                escaped(&device.name),
                device.peer_id,
                if on { "on" } else { "off" }
            );
            output::result(json, serde_json::json!({ "device": device }), text);
            Ok(())
        }
        other => Err(CliError::Unexpected(Box::new(other))),
    }
}
