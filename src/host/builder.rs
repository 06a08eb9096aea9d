//! [`HostBuilder`]: where the host's settings come from.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Host, Registry};
use crate::error::{Error, Result};
use crate::feature::ServerAddress;

/// The environment variable naming the server: `SERVERBRIDGE_SERVER`.
pub const ENV_SERVER: &str = "SERVERBRIDGE_SERVER";
/// The environment variable listing the URLs: `SERVERBRIDGE_URLS`.
pub const ENV_URLS: &str = "SERVERBRIDGE_URLS";
/// The environment variable with the graceful-stop deadline in seconds:
/// `SERVERBRIDGE_SHUTDOWN_TIMEOUT`.
pub const ENV_SHUTDOWN_TIMEOUT: &str = "SERVERBRIDGE_SHUTDOWN_TIMEOUT";

/// The server used when none is named: `builtin`.
pub const DEFAULT_SERVER: &str = "builtin";
/// The URLs used when none are given: `http://127.0.0.1:5000`.
pub const DEFAULT_URLS: &str = "http://127.0.0.1:5000";
/// How long a graceful stop may take before what remains is aborted: 30 s,
/// ASP.NET Core's `HostOptions.ShutdownTimeout`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The command-line options [`HostBuilder::args`] understands.
const USAGE: &str = "[--server NAME] [--urls URLS] [--shutdown-timeout SECONDS]";

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Configures a [`Host`]; see the [module docs](super) for the settings.
///
/// Precedence, highest first: what is set on the builder (by
/// [`server`](Self::server), [`urls`](Self::urls),
/// [`shutdown_timeout`](Self::shutdown_timeout), or [`args`](Self::args),
/// which calls them; the last call wins), then the environment
/// (`SERVERBRIDGE_SERVER`, `SERVERBRIDGE_URLS`,
/// `SERVERBRIDGE_SHUTDOWN_TIMEOUT`; an empty value counts as unset), then the
/// defaults ([`DEFAULT_SERVER`], [`DEFAULT_URLS`],
/// [`DEFAULT_SHUTDOWN_TIMEOUT`]). Nothing is checked before
/// [`build`](Self::build).
pub struct HostBuilder {
    registry: Option<Registry>,
    server: Option<String>,
    urls: Option<String>,
    shutdown_timeout: Option<Duration>,
    environment: Arc<Lookup>,
    signals: bool,
    error: Option<Error>,
}

impl fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuilder")
            .field("registry", &self.registry)
            .field("server", &self.server)
            .field("urls", &self.urls)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("signals", &self.signals)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            registry: None,
            server: None,
            urls: None,
            shutdown_timeout: None,
            environment: Arc::new(|key| std::env::var(key).ok()),
            signals: true,
            error: None,
        }
    }
}

impl HostBuilder {
    /// The servers to choose from (default: [`Registry::new`], `builtin`
    /// only).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The server's name in the registry; overrides `SERVERBRIDGE_SERVER`.
    pub fn server(mut self, name: impl Into<String>) -> Self {
        self.server = Some(name.into());
        self
    }

    /// `;`-separated URLs (`http://127.0.0.1:0;unix:/run/app.sock`, the
    /// forms of [`ServerAddress::parse`]); overrides `SERVERBRIDGE_URLS`.
    pub fn urls(mut self, urls: impl Into<String>) -> Self {
        self.urls = Some(urls.into());
        self
    }

    /// How long a graceful stop may take before the server aborts what
    /// remains; overrides `SERVERBRIDGE_SHUTDOWN_TIMEOUT`. Default
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`] (30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Reads command-line options (without the program name):
    /// `--server NAME`, `--urls URLS`, `--shutdown-timeout SECONDS`, each
    /// also as `--option=value`. They set what the methods of the same name
    /// set, so they override the environment.
    ///
    /// An unknown option or a missing value makes [`build`](Self::build)
    /// fail with a configuration error that shows the usage.
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let (option, inline) = match arg.split_once('=') {
                Some((option, value)) if option.starts_with("--") => {
                    (option.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            if !matches!(
                option.as_str(),
                "--server" | "--urls" | "--shutdown-timeout"
            ) {
                self.fail(format!("unknown argument {arg:?}; usage: {USAGE}"));
                break;
            }
            let Some(value) = inline.or_else(|| args.next()) else {
                self.fail(format!("{option} needs a value; usage: {USAGE}"));
                break;
            };
            match option.as_str() {
                "--server" => self.server = Some(value),
                "--urls" => self.urls = Some(value),
                _ => match parse_seconds(&value) {
                    Some(timeout) => self.shutdown_timeout = Some(timeout),
                    None => self.fail(format!(
                        "--shutdown-timeout {value:?}: expected a number of seconds (30, 0.5)"
                    )),
                },
            }
        }
        self
    }

    /// Where environment variables are read (default: the process
    /// environment, read by [`build`](Self::build)). Tests pass a closure
    /// over their own map instead of changing the process environment.
    pub fn environment<F>(mut self, lookup: F) -> Self
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        self.environment = Arc::new(lookup);
        self
    }

    /// Whether the host turns SIGINT/SIGTERM into a stop (default `true`).
    /// Off, the host installs no signal handler at all: for tests and for
    /// programs that handle signals themselves (they stop the host with
    /// [`RunningHost::stop`](super::RunningHost::stop) or
    /// [`run_until`](super::RunningHost::run_until)).
    pub fn handle_signals(mut self, enabled: bool) -> Self {
        self.signals = enabled;
        self
    }

    fn fail(&mut self, message: String) {
        self.error.get_or_insert_with(|| Error::config(message));
    }

    /// Resolves the settings and builds the server (not started yet).
    ///
    /// # Errors
    ///
    /// A configuration error ([`Error::is_config`]) for a bad command-line
    /// option, an unknown server name (the message lists the registered
    /// names), a malformed or empty URL list (the message quotes the URL,
    /// says where it came from and names the accepted forms) or a malformed
    /// timeout; or the server factory's error.
    pub fn build(self) -> Result<Host> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let env = |key: &str| (self.environment)(key).filter(|v| !v.trim().is_empty());
        let registry = self.registry.unwrap_or_default();

        let (server_name, source) = match (self.server, env(ENV_SERVER)) {
            (Some(name), _) => (name, "the --server setting"),
            (None, Some(name)) => (name, ENV_SERVER),
            (None, None) => (DEFAULT_SERVER.to_owned(), "the default"),
        };
        let server_name = server_name.trim().to_owned();
        if !registry.contains(&server_name) {
            return Err(Error::config(format!(
                "{source}: unknown server {server_name:?}; available: {}",
                registry.names().join(", ")
            )));
        }

        let (urls, source) = match (self.urls, env(ENV_URLS)) {
            (Some(urls), _) => (urls, "the --urls setting"),
            (None, Some(urls)) => (urls, ENV_URLS),
            (None, None) => (DEFAULT_URLS.to_owned(), "the default"),
        };
        let addresses = ServerAddress::parse_list(&urls)
            .map_err(|err| Error::config(format!("{source}: {}", strip_kind(&err))))?;
        if addresses.is_empty() {
            return Err(Error::config(format!(
                "{source}: no URL given; expected one or more of {}, separated by ';'",
                crate::feature::URL_FORMS
            )));
        }

        let shutdown_timeout = match self.shutdown_timeout {
            Some(timeout) => timeout,
            None => match env(ENV_SHUTDOWN_TIMEOUT) {
                Some(value) => parse_seconds(&value).ok_or_else(|| {
                    Error::config(format!(
                        "{ENV_SHUTDOWN_TIMEOUT} {value:?}: expected a number of seconds (30, 0.5)"
                    ))
                })?,
                None => DEFAULT_SHUTDOWN_TIMEOUT,
            },
        };

        let server = registry.build(&server_name, &addresses)?;
        Ok(Host {
            server,
            server_name,
            addresses,
            shutdown_timeout,
            signals: self.signals,
        })
    }
}

/// The message of a configuration error without its "invalid
/// configuration: " prefix, to put a source in front of it.
fn strip_kind(err: &Error) -> String {
    let text = err.to_string();
    match text.split_once(": ") {
        Some((_, rest)) => rest.to_owned(),
        None => text,
    }
}

/// `30`, `0.5`: a non-negative, finite number of seconds.
fn parse_seconds(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_whole_and_fractional_and_reject_the_rest() {
        assert_eq!(parse_seconds("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_seconds(" 0.5 "), Some(Duration::from_millis(500)));
        for bad in ["", "-1", "NaN", "inf", "5s"] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }
}
