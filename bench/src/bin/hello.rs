//! The floor of starting a process: a minimal Rust binary (the standard library's start-up,
//! one line on stdout), which `client-latency` runs next to `/bin/true` and `paircode`.

fn main() {
    println!("hello");
}
