//! Where the password comes from. Never from argv by default: other users can read a
//! process's arguments. `--password` exists for scripts that insist, and warns.

use std::io::{BufRead, IsTerminal};

use zeroize::Zeroizing;

pub const ENV_VAR: &str = "PAIRCODE_PASSWORD";
/// The shortest password `network init` accepts. Opening a store takes any length, so a
/// store made before the rule still opens.
pub const MIN_LENGTH: usize = 8;
/// Prompts before giving up, as `passwd` does.
pub const TRIES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Creating a password: ask twice.
    Twice,
    Once,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "no password given: run in a terminal to be prompted, or use --password-stdin or {ENV_VAR}"
    )]
    Missing,
    #[error("the two passwords differ")]
    Mismatch,
    #[error("the password is empty")]
    Empty,
    #[error("the password is shorter than {MIN_LENGTH} characters")]
    TooShort,
    #[error("reading the password: {0}")]
    Io(#[from] std::io::Error),
}

/// Sources in order: stdin (when asked), the environment, `--password`, an interactive
/// prompt, which asks again after a mistake. The returned buffer is wiped on drop.
pub fn obtain(
    from_stdin: bool,
    argv_value: Option<String>,
    confirm: Confirm,
) -> Result<Zeroizing<String>, PasswordError> {
    let password = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line)?;
        Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_string())
    } else if let Ok(value) = std::env::var(ENV_VAR) {
        Zeroizing::new(value)
    } else if let Some(value) = argv_value {
        eprintln!(
            "warning: --password puts the password on the command line, where other users can read it; \
             prefer the prompt, --password-stdin or {ENV_VAR}"
        );
        Zeroizing::new(value)
    } else if std::io::stdin().is_terminal() {
        return prompt(confirm);
    } else {
        return Err(PasswordError::Missing);
    };
    acceptable(&password, confirm)?;
    Ok(password)
}

/// Whether [`obtain`] will ask at the terminal: no other source was given.
pub fn prompts(from_stdin: bool, argv_value: Option<&str>) -> bool {
    !from_stdin
        && std::env::var_os(ENV_VAR).is_none()
        && argv_value.is_none()
        && std::io::stdin().is_terminal()
}

fn prompt(confirm: Confirm) -> Result<Zeroizing<String>, PasswordError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
        let outcome = acceptable(&first, confirm).and_then(|()| match confirm {
            Confirm::Once => Ok(()),
            Confirm::Twice => {
                let second = Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
                match *first == *second {
                    true => Ok(()),
                    false => Err(PasswordError::Mismatch),
                }
            }
        });
        match outcome {
            Ok(()) => return Ok(first),
            Err(e) if tries < TRIES => eprintln!("{e}; try again"),
            Err(e) => return Err(e),
        }
    }
}

/// A new password (`Twice`) must be at least [`MIN_LENGTH`] characters long.
fn acceptable(password: &str, confirm: Confirm) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if confirm == Confirm::Twice && password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}
