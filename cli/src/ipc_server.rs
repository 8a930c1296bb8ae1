//! Limits on the daemon's side of the IPC socket. Only the daemon's own user can connect,
//! but a buggy or hostile program of that user must not be able to take the daemon's
//! memory, descriptors or CPU, nor lock the real CLI out:
//! - at most [`MAX_CLIENTS`] connections are served at once;
//! - a connection must send its request within [`REQUEST_TIMEOUT`], and when every place
//!   is taken a new connection takes the place of the one that has waited longest without
//!   sending its request (idle connections cannot queue ahead of `paircode status`);
//! - a failing `accept` (out of descriptors, say) is retried with growing pauses and
//!   logged once per streak, instead of spinning and logging at full speed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// CLI connections served at once. A user runs a handful at a time.
pub const MAX_CLIENTS: usize = 64;
/// How long a client may take to send its request (a CLI sends it at once).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reply may take to be read before the client is dropped.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// Connections that have not sent their request yet, oldest first, each with the way to
/// tell it to give up its place.
type Waiting = Arc<Mutex<VecDeque<(u64, oneshot::Sender<()>)>>>;

/// A connected client and its place among the [`MAX_CLIENTS`]; the place is given back
/// when `slot` is dropped.
pub struct Accepted {
    pub stream: UnixStream,
    pub slot: OwnedSemaphorePermit,
    /// Until dropped, this client can be told to make room ([`Idle::evicted`]).
    pub idle: Idle,
}

/// A client that has not sent its request yet. Drop it once the request is in.
pub struct Idle {
    id: u64,
    waiting: Waiting,
    evicted: oneshot::Receiver<()>,
}

impl Idle {
    /// Completes when a newer connection needs this client's place.
    pub async fn evicted(&mut self) {
        if (&mut self.evicted).await.is_err() {
            // The server is gone; nobody will ask again.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.waiting
            .lock()
            .expect("waiting lock")
            .retain(|(id, _)| *id != self.id);
    }
}

pub struct IpcServer {
    listener: UnixListener,
    slots: Arc<Semaphore>,
    waiting: Waiting,
    next_id: u64,
    /// Failures in a row, for the backoff and for one log line per streak.
    failures: u32,
}

impl IpcServer {
    pub fn new(listener: UnixListener) -> Self {
        IpcServer {
            listener,
            slots: Arc::new(Semaphore::new(MAX_CLIENTS)),
            waiting: Arc::default(),
            next_id: 0,
            failures: 0,
        }
    }

    /// The next client, with a place: a free one, or the longest-idle client's, or (when
    /// all clients are busy with requests) the next one to be freed. Not cancel-safe once
    /// a connection is accepted; the daemon only cancels it to stop.
    pub async fn accept(&mut self) -> Accepted {
        let stream = self.accept_stream().await;
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                self.evict_oldest_idle();
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed")
            }
        };
        let (tx, rx) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        self.waiting
            .lock()
            .expect("waiting lock")
            .push_back((id, tx));
        Accepted {
            stream,
            slot,
            idle: Idle {
                id,
                waiting: self.waiting.clone(),
                evicted: rx,
            },
        }
    }

    fn evict_oldest_idle(&self) {
        let mut waiting = self.waiting.lock().expect("waiting lock");
        while let Some((_, tell)) = waiting.pop_front() {
            if tell.send(()).is_ok() {
                return;
            }
        }
    }

    async fn accept_stream(&mut self) -> UnixStream {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    if self.failures > 0 {
                        tracing::info!(failures = self.failures, "accepting CLI connections again");
                        self.failures = 0;
                    }
                    return stream;
                }
                Err(e) => {
                    if self.failures == 0 {
                        tracing::warn!("accepting a CLI connection: {e}; retrying with pauses");
                    }
                    self.failures = self.failures.saturating_add(1);
                    tokio::time::sleep(pause_after(self.failures)).await;
                }
            }
        }
    }
}

/// 10 ms after the first failure, doubling up to a second.
fn pause_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    (FIRST_PAUSE * 2u32.pow(doublings)).min(LONGEST_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_second() {
        assert_eq!(pause_after(1), Duration::from_millis(10));
        assert_eq!(pause_after(2), Duration::from_millis(20));
        assert_eq!(pause_after(8), Duration::from_millis(1000));
        assert_eq!(pause_after(u32::MAX), LONGEST_PAUSE);
    }

    #[tokio::test]
    async fn a_new_client_takes_the_place_of_the_longest_idle_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut server = IpcServer::new(UnixListener::bind(&path).unwrap());
        let mut clients = Vec::new();
        for _ in 0..MAX_CLIENTS + 1 {
            clients.push(UnixStream::connect(&path).await.unwrap());
        }
        let mut held = Vec::new();
        for _ in 0..MAX_CLIENTS {
            held.push(server.accept().await);
        }
        // The first one sent its request: it is busy, not idle.
        let busy = held.remove(0);
        let Accepted { slot, idle, .. } = busy;
        drop(idle);
        let server_task = tokio::spawn(async move {
            let next = server.accept().await;
            (server, next)
        });
        // The second one is the longest idle: it is told to go, and goes.
        let mut second = held.remove(0);
        tokio::time::timeout(Duration::from_secs(2), second.idle.evicted())
            .await
            .expect("the longest-idle client was evicted");
        drop(second);
        let (_server, _next) = tokio::time::timeout(Duration::from_secs(2), server_task)
            .await
            .expect("the new client got the freed place")
            .unwrap();
        drop(slot);
    }
}
