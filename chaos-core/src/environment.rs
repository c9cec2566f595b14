//! Where the process runs, and the guard that keeps chaos out of production unless it is asked for.

use std::fmt;
use std::str::FromStr;

/// The largest blast radius (fraction of matching traffic) any rule may have in [`Environment::Prod`].
pub const PROD_MAX_BLAST_RADIUS: f64 = 0.30;

/// The environment the process runs in; it decides how much chaos may arm.
///
/// It comes from the process, never from the chaos config (a config must not be able to declare itself out
/// of production): [`Environment::from_env`] reads `BROWNOUT_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Environment {
    /// A developer's machine. No extra guard.
    Dev,
    /// Automated tests and CI. No extra guard.
    Test,
    /// A staging or pre-production environment. No extra guard.
    Staging,
    /// Production: nothing arms unless the config says `allow_prod: true`; then no rule may exceed
    /// [`PROD_MAX_BLAST_RADIUS`], header-driven faults stay off and only one experiment may be armed at a time
    /// in the process.
    Prod,
}

impl Environment {
    /// Reads `BROWNOUT_ENV` (`dev`, `test`, `staging`, `prod`/`production`, case-insensitive).
    ///
    /// Unset means [`Environment::Dev`]. A value that is set but not understood means
    /// [`Environment::Prod`]: a typo must not switch the production guard off.
    pub fn from_env() -> Self {
        match std::env::var("BROWNOUT_ENV") {
            Err(std::env::VarError::NotPresent) => Environment::Dev,
            Ok(value) => value.parse().unwrap_or_else(|_| {
                tracing::warn!(value = %value, "BROWNOUT_ENV not understood; treating the process as prod");
                Environment::Prod
            }),
            Err(std::env::VarError::NotUnicode(_)) => Environment::Prod,
        }
    }

    /// The lowercase name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Test => "test",
            Environment::Staging => "staging",
            Environment::Prod => "prod",
        }
    }
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" | "local" => Ok(Environment::Dev),
            "test" | "ci" => Ok(Environment::Test),
            "staging" | "stage" | "preprod" => Ok(Environment::Staging),
            "prod" | "production" => Ok(Environment::Prod),
            other => Err(format!("unknown environment `{other}`")),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
