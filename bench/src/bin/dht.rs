//! The DHT path's reliability and latency (issue 12), in release: a private DHT of 30
//! paircode nodes on 127.0.0.1 (mDNS off), then joins, each by a fresh joiner bootstrapped
//! from a random node that is not the initiator, so it finds the initiator only through its
//! provider record (`paircode_netbed::dht`; the same run as the test
//! `testing/netbed/tests/dht_reliability.rs`, which asserts ≥ 99 %).
//!
//! ```sh
//! cargo run --release -p paircode-bench --bin dht -- [--population 30] [--joins 100] [--parallel 6] [--write]
//! ```
//!
//! Prints the table with the date and load average; `--write` replaces its section of
//! BENCHMARKS.md.

use paircode_bench::args::{ArgError, Args};
use paircode_bench::report::{self, ms, Conditions};
use paircode_netbed::dht::{joins_from_random_bootstraps, DhtRun};

const HEADING: &str = "## DHT reliability (issue 12)";

fn options(args: &mut Args, run: &mut DhtRun) -> Result<(), ArgError> {
    while let Some(flag) = args.next_flag()? {
        match flag.name.as_str() {
            "--population" => run.population = flag.positive::<usize>()?.max(2),
            "--joins" => run.joins = flag.positive()?,
            "--parallel" => run.parallel = flag.positive::<usize>()?.min(run.population - 1),
            _ => return Err(flag.unknown()),
        }
    }
    Ok(())
}

fn main() {
    let mut args = Args::from_env();
    let write = args.write;
    let mut run = DhtRun {
        population: 30,
        joins: 100,
        parallel: 6,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    if let Err(e) = options(&mut args, &mut run) {
        eprintln!("dht: {e}");
        std::process::exit(2);
    }
    let conditions = Conditions::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(joins_from_random_bootstraps(run));
    let DhtRun {
        population,
        joins,
        parallel,
        seed,
    } = run;
    let mut section = format!(
        "{HEADING}\n\nCommand (release build):\n\n```sh\n\
         cargo run --release -p paircode-bench --bin dht -- --population {population} --joins {joins} --parallel {parallel} --write\n```\n\n\
         {} Seed {seed}.\n\n\
         | case | joins | paired | failed | p50 ms | p95 ms | max ms | goal |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n\
         | {population} nodes, joiner bootstrapped from a random other node: join → both paired | {joins} | {} | {} | {:.0} | {:.0} | {:.0} | ≥ 99 % paired |\n\n",
        conditions.line(),
        outcome.paired.len(),
        outcome.failures.len(),
        ms(outcome.percentile(50)),
        ms(outcome.percentile(95)),
        ms(outcome.percentile(100)),
    );
    for failure in &outcome.failures {
        section.push_str(&format!("- failed: {failure}\n"));
    }
    section.push_str(&format!(
        "- All {population} nodes and every joiner run in this one process on 127.0.0.1 \
         with mDNS off; each node started from a random earlier one. Each join: a random \
         initiator generates a code, a new joiner bootstrapped from a random node other \
         than the initiator joins with it; {parallel} joins at a time, each with its own \
         initiator. From the joiner's `join` until both sides completed, after `generate` \
         returned (the record is announced meanwhile: the joiner's first lookups may find \
         nothing, and it looks up again every 2 s).\n"
    ));
    println!("{section}");
    if write {
        match report::write_section(HEADING, &section) {
            Ok(path) => eprintln!("written to {}", path.display()),
            Err(e) => {
                eprintln!("dht: writing BENCHMARKS.md: {e}");
                std::process::exit(1);
            }
        }
    }
}
