#![no_main]
use libfuzzer_sys::fuzz_target;
use paircode_fuzz::{run, Op, Side};

fuzz_target!(|ops: Vec<Op>| run(Side::Initiator, &ops));
