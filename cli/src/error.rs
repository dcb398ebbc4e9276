//! Errors and exit codes of the `dcos` command.

use std::fmt;

/// Exit codes (documented in docs/cli.md).
pub mod exit {
    pub const OK: i32 = 0;
    /// The server refused the request, or the user asked for something impossible.
    pub const ERROR: i32 = 1;
    /// Bad command line (clap uses 2 too).
    pub const USAGE: i32 = 2;
    /// The cluster could not be reached (connection refused, DNS, timeout, not a DC/OS cluster).
    pub const UNREACHABLE: i32 = 3;
    /// Authentication is required or the token was refused.
    pub const AUTH: i32 = 4;
}

/// Everything that can go wrong, each with a message and an optional hint.
#[derive(Debug)]
pub enum CliError {
    Usage {
        message: String,
        hint: Option<String>,
    },
    Unreachable {
        message: String,
        hint: Option<String>,
    },
    Auth {
        message: String,
        hint: Option<String>,
    },
    /// The server answered with an error (or the user asked for something that does not exist).
    Failed {
        message: String,
        hint: Option<String>,
        /// The server's error `type` (Cosmos: `PackageAlreadyInstalled`, `AmbiguousAppId`, …).
        error_type: Option<String>,
    },
}

impl CliError {
    pub fn failed(message: impl Into<String>) -> Self {
        CliError::Failed {
            message: message.into(),
            hint: None,
            error_type: None,
        }
    }

    pub fn failed_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Failed {
            message: message.into(),
            hint: Some(hint.into()),
            error_type: None,
        }
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } => exit::USAGE,
            CliError::Unreachable { .. } => exit::UNREACHABLE,
            CliError::Auth { .. } => exit::AUTH,
            CliError::Failed { .. } => exit::ERROR,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CliError::Usage { message, .. }
            | CliError::Unreachable { message, .. }
            | CliError::Auth { message, .. }
            | CliError::Failed { message, .. } => message,
        }
    }

    /// The server's error `type`, when it answered with a typed error body.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            CliError::Failed { error_type, .. } => error_type.as_deref(),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            CliError::Usage { hint, .. }
            | CliError::Unreachable { hint, .. }
            | CliError::Auth { hint, .. }
            | CliError::Failed { hint, .. } => hint.as_deref(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error: {}", self.message())?;
        if let Some(h) = self.hint() {
            write!(f, "\nHint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

pub type Result<T> = std::result::Result<T, CliError>;
