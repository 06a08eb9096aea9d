//! The conformance kit (feature `conformance`): a suite any [`Server`] runs
//! from its own tests to learn, check by check, what it does and does not do
//! of serverbridge's contract (the analogue of Rack's `Lint` run against a
//! server, or a servlet TCK).
//!
//! [`run`] takes a factory that builds a fresh, not yet started server. For
//! each check the kit builds one, starts it with its own probe application,
//! reaches it through the addresses it publishes in
//! [`ServerAddresses`](crate::feature::ServerAddresses) (TCP, unix, or an
//! in-memory [`Connector`](crate::testing::Connector)) with a real HTTP/1.1
//! client (or HTTP/2 with [`Options::version`]), compares what the probe saw
//! inside with what was sent and what came back with what the probe wrote,
//! and stops the server. Each check has a stable id, a profile and a
//! sentence; its [`Outcome`] is pass, fail with the reason, or unsupported
//! when the feature it needs is absent (never a pass).
//!
//! # Profiles
//!
//! - [`Profile::Minimum`]: only the required features (request, response,
//!   response body): every request part intact, length-delimited bodies,
//!   status and headers, the 500 for an error before the head, the
//!   lifecycle's order.
//! - [`Profile::Standard`]: what a production server does: streamed and
//!   16 MiB bodies, HEAD, aborting a response that failed after its head,
//!   keep-alive, `ConnectionInfo`, `RequestLifetime` on client abort,
//!   `ServerAddresses` with port 0 resolved, server-level features on every
//!   request, graceful stop.
//! - [`Profile::Full`]: trailers both ways and upgrades.
//!
//! SPEC.md ("Conformance profiles") says what a server must do for each.
//!
//! # Running it against your server
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! use serverbridge::conformance::{self, Profile};
//! use serverbridge::server::HttpServer;
//! use serverbridge::Server;
//!
//! let report = conformance::run(|| {
//!     Box::new(HttpServer::new().bind("127.0.0.1:0".parse().unwrap())) as Box<dyn Server>
//! })
//! .await;
//! println!("{report}"); // a table: check, profile, result, reason
//! report.assert_meets(Profile::Full);
//! # });
//! ```
//!
//! The kit needs a multi-threaded runtime only if the server does; its own
//! waits are bounded ([`Options::check_timeout`] per check).

mod checks;
mod harness;
mod probe;
mod report;
mod requests;
mod responses;

use std::fmt;
use std::time::Duration;

use http::Version;

use crate::server_trait::Server;

pub use report::{CheckResult, Matrix, Outcome, Report};

use harness::{CheckFn, Harness};

/// A group of checks; each profile includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// Only the required features.
    Minimum,
    /// What a production server does.
    Standard,
    /// Everything, trailers and upgrades included.
    Full,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Minimum => "minimum",
            Profile::Standard => "standard",
            Profile::Full => "full",
        })
    }
}

/// One named check of the catalog.
pub struct Check {
    /// The stable id, such as `request.path`.
    pub id: &'static str,
    /// The profile it belongs to.
    pub profile: Profile,
    /// One sentence: what it verifies.
    pub description: &'static str,
    run: CheckFn,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("profile", &self.profile)
            .finish()
    }
}

/// Every check, in the order the kit runs them and the matrix lists them.
pub fn catalog() -> &'static [Check] {
    &checks::CATALOG
}

/// How the kit runs.
#[derive(Clone, Debug)]
pub struct Options {
    version: Version,
    check_timeout: Duration,
    profile: Profile,
    only: Option<Vec<String>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            version: Version::HTTP_11,
            check_timeout: Duration::from_secs(30),
            profile: Profile::Full,
            only: None,
        }
    }
}

impl Options {
    /// The protocol the kit's client speaks: `HTTP_11` (the default) or
    /// `HTTP_2` (prior knowledge, h2c).
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// How long one check may take, server start and stop included, before
    /// it fails (default 30 s).
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// Runs only the checks of this profile and below (default
    /// [`Profile::Full`]: all of them).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Runs only the checks with these ids (within the profile): to rerun
    /// one that failed, or to test a check. An unknown id selects nothing.
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::conformance::Options;
    ///
    /// let options = Options::default().only(["response.head", "request.path"]);
    /// # let _ = options;
    /// ```
    pub fn only<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    fn selects(&self, check: &Check) -> bool {
        check.profile <= self.profile
            && self
                .only
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|id| id == check.id))
    }
}

/// Runs every check against fresh servers from `factory`, over HTTP/1.1.
pub async fn run<F>(factory: F) -> Report
where
    F: FnMut() -> Box<dyn Server>,
{
    run_with(Options::default(), factory).await
}

/// Runs the checks `options` selects against fresh servers from `factory`.
pub async fn run_with<F>(options: Options, mut factory: F) -> Report
where
    F: FnMut() -> Box<dyn Server>,
{
    let mut report = Report::default();
    for check in catalog().iter().filter(|c| options.selects(c)) {
        let outcome = run_one(check, &options, factory()).await;
        report.results.push(CheckResult {
            id: check.id,
            profile: check.profile,
            description: check.description,
            outcome,
        });
    }
    report
}

/// Starts `server`, runs `check` against it within the time limit, stops it.
async fn run_one(check: &Check, options: &Options, server: Box<dyn Server>) -> Outcome {
    let limit = options.check_timeout;
    let mut harness = match Harness::start(server, options.version).await {
        Ok(harness) => harness,
        Err(outcome) => return outcome,
    };
    let outcome = match tokio::time::timeout(limit, (check.run)(&mut harness)).await {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(not_pass)) => not_pass.0,
        Err(_) => Outcome::Fail(format!("did not finish within {limit:?}")),
    };
    match harness.stop().await {
        Err(reason) if outcome.is_pass() => Outcome::Fail(reason),
        _ => outcome,
    }
}
