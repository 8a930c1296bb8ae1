//! paircode: a `Delay` on the tokio runtime's own timer when it is created inside one, and
//! on futures-timer's timer thread (`native::Delay`, unchanged) otherwise. See
//! README.paircode.md.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::native;

/// A future representing the notification that an elapsed duration has occurred.
///
/// Created inside a tokio runtime, it is a `tokio::time::Sleep` (that runtime's timer must
/// be enabled, as libp2p-mdns's tokio provider needs already); elsewhere it is
/// futures-timer's own `Delay`, served by its global timer thread.
pub struct Delay(Inner);

enum Inner {
    Tokio(Pin<Box<tokio::time::Sleep>>),
    Thread(native::Delay),
}

impl Delay {
    /// Creates a new future which will fire at `dur` time into the future.
    pub fn new(dur: Duration) -> Delay {
        match tokio::runtime::Handle::try_current() {
            Ok(_) => Delay(Inner::Tokio(Box::pin(tokio::time::sleep(dur)))),
            Err(_) => Delay(Inner::Thread(native::Delay::new(dur))),
        }
    }

    /// Resets this timeout to an new timeout which will fire at the time specified by
    /// `dur`.
    pub fn reset(&mut self, dur: Duration) {
        match &mut self.0 {
            Inner::Tokio(sleep) => {
                // `sleep` itself saturates a far deadline; `reset` takes an instant.
                let now = tokio::time::Instant::now();
                let at = now
                    .checked_add(dur)
                    .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
                sleep.as_mut().reset(at);
            }
            Inner::Thread(delay) => delay.reset(dur),
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Inner::Tokio(sleep) => sleep.as_mut().poll(cx),
            Inner::Thread(delay) => Pin::new(delay).poll(cx),
        }
    }
}

impl fmt::Debug for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Tokio(sleep) => f.debug_tuple("Delay").field(sleep).finish(),
            Inner::Thread(delay) => f.debug_tuple("Delay").field(delay).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn inside_tokio_it_is_tokios_timer_and_elsewhere_the_timer_thread() {
        // Outside any runtime: the timer thread.
        let delay = Delay::new(Duration::from_millis(20));
        assert!(matches!(delay.0, Inner::Thread(_)));
        let started = Instant::now();
        futures::executor::block_on(delay);
        assert!(started.elapsed() >= Duration::from_millis(20));

        // Inside a current-thread runtime with its timer: tokio's, and reset works.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut delay = Delay::new(Duration::from_secs(3600));
            assert!(matches!(delay.0, Inner::Tokio(_)));
            delay.reset(Duration::from_millis(20));
            let started = Instant::now();
            delay.await;
            assert!(started.elapsed() >= Duration::from_millis(20));
            // A deadline too far to represent is a far one, not a panic.
            Delay::new(Duration::from_millis(1)).reset(Duration::MAX);
        });
    }
}
