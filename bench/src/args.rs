//! The benchmark binaries' arguments: `--write` anywhere, and otherwise `--flag value`
//! pairs, most of them positive numbers.

use std::str::FromStr;

/// Why the arguments were refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("{0} needs a value")]
    NoValue(String),
    #[error("{0} needs a positive number")]
    NotPositive(String),
    #[error("unknown argument {0}")]
    Unknown(String),
}

/// The arguments, `--write` already taken out.
pub struct Args {
    /// Whether `--write` was given: then the binary replaces its section of BENCHMARKS.md.
    pub write: bool,
    rest: std::vec::IntoIter<String>,
}

/// One `--flag value` pair.
pub struct Flag {
    pub name: String,
    pub value: String,
}

impl Args {
    /// This program's arguments.
    pub fn from_env() -> Args {
        Args::new(std::env::args().skip(1).collect())
    }

    pub fn new(mut args: Vec<String>) -> Args {
        let before = args.len();
        args.retain(|a| a != "--write");
        Args {
            write: args.len() != before,
            rest: args.into_iter(),
        }
    }

    /// The next flag with its value, or `None` after the last one.
    pub fn next_flag(&mut self) -> Result<Option<Flag>, ArgError> {
        let Some(name) = self.rest.next() else {
            return Ok(None);
        };
        match self.rest.next() {
            Some(value) => Ok(Some(Flag { name, value })),
            None => Err(ArgError::NoValue(name)),
        }
    }
}

impl Flag {
    /// The value as a number above zero.
    pub fn positive<T: FromStr + PartialOrd + Default>(&self) -> Result<T, ArgError> {
        self.value
            .parse::<T>()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or_else(|| ArgError::NotPositive(self.name.clone()))
    }

    /// The error for a flag the binary does not know.
    pub fn unknown(self) -> ArgError {
        ArgError::Unknown(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::new(list.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn write_is_taken_from_anywhere() {
        let mut a = args(&["--runs", "3", "--write"]);
        assert!(a.write);
        let flag = a.next_flag().unwrap().unwrap();
        assert_eq!(
            (flag.name.as_str(), flag.positive::<usize>()),
            ("--runs", Ok(3))
        );
        assert!(a.next_flag().unwrap().is_none());
        assert!(!args(&[]).write);
    }

    #[test]
    fn refusals_name_the_flag() {
        assert_eq!(
            args(&["--runs"]).next_flag().err(),
            Some(ArgError::NoValue("--runs".into()))
        );
        for bad in ["0", "x", "-1"] {
            let flag = args(&["--runs", bad]).next_flag().unwrap().unwrap();
            assert_eq!(
                flag.positive::<i64>(),
                Err(ArgError::NotPositive("--runs".into()))
            );
        }
        let flag = args(&["--bogus", "3"]).next_flag().unwrap().unwrap();
        assert_eq!(flag.unknown().to_string(), "unknown argument --bogus");
    }
}
