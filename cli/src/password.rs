//! Where the password comes from. Never from argv by default: other users can read a
//! process's arguments. `--password` exists for scripts that insist, and warns.

use std::io::{BufRead, IsTerminal};

use zeroize::Zeroizing;

pub const ENV_VAR: &str = "PAIRCODE_PASSWORD";

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
    #[error("reading the password: {0}")]
    Io(#[from] std::io::Error),
}

/// Sources in order: stdin (when asked), the environment, `--password`, an interactive
/// prompt. The returned buffer is wiped on drop.
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
        let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
        if confirm == Confirm::Twice {
            let second = Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
            if *first != *second {
                return Err(PasswordError::Mismatch);
            }
        }
        first
    } else {
        return Err(PasswordError::Missing);
    };
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    Ok(password)
}
