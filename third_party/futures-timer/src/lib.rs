//! A general purpose crate for working with timeouts and delays with futures.
//!
//! # Examples
//!
//! ```no_run
//! # #[async_std::main]
//! # async fn main() {
//! use std::time::Duration;
//! use futures_timer::Delay;
//!
//! let now = Delay::new(Duration::from_secs(3)).await;
//! println!("waited for 3 secs");
//! # }
//! ```

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

// paircode: upstream's code, kept as published; the workspace's clippy settings are not
// applied to it.
#[cfg(not(all(target_arch = "wasm32", feature = "wasm-bindgen")))]
#[allow(clippy::all)]
mod native;
#[cfg(all(target_arch = "wasm32", feature = "wasm-bindgen"))]
mod wasm;

// paircode: `Delay` is `tokio_or_thread::Delay` (see README.paircode.md).
#[cfg(not(all(target_arch = "wasm32", feature = "wasm-bindgen")))]
mod tokio_or_thread;
#[cfg(not(all(target_arch = "wasm32", feature = "wasm-bindgen")))]
pub use self::tokio_or_thread::Delay;
#[cfg(all(target_arch = "wasm32", feature = "wasm-bindgen"))]
pub use self::wasm::Delay;
