//! [`Report`]: what the kit found, check by check; [`Matrix`]: several
//! servers' summaries side by side.

use std::fmt;
use std::path::Path;

use super::Profile;

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server does what the check verifies.
    Pass,
    /// It does not; the reason says what the kit saw.
    Fail(String),
    /// The feature the check needs is absent (the app saw no such feature,
    /// or the transport has no such thing); the reason says which.
    Unsupported(String),
}

impl Outcome {
    /// `pass`, `fail` or `unsupported`: the word used in summaries and in
    /// the README's support matrix.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Unsupported(_) => "unsupported",
        }
    }

    /// Whether the check passed.
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
}

/// One check's result, with the check's id, profile and description.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// The stable id, such as `request.path`.
    pub id: &'static str,
    /// The profile the check belongs to.
    pub profile: Profile,
    /// One sentence: what the check verifies.
    pub description: &'static str,
    /// What happened.
    pub outcome: Outcome,
}

/// The results of a conformance run, in catalog order. Prints as a table;
/// tests assert on it with [`assert_meets`](Self::assert_meets) or
/// [`outcome`](Self::outcome).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub(super) results: Vec<CheckResult>,
}

impl Report {
    /// Every check's result.
    pub fn results(&self) -> &[CheckResult] {
        &self.results
    }

    /// The outcome of the check with this id, if it ran.
    pub fn outcome(&self, id: &str) -> Option<&Outcome> {
        self.results.iter().find(|r| r.id == id).map(|r| &r.outcome)
    }

    /// The ids of the checks that failed.
    pub fn failures(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
            .map(|r| r.id)
            .collect()
    }

    /// Whether every check of `profile` and of the profiles below it passed
    /// (an unsupported check does not meet a profile).
    ///
    /// Every such check of the catalog must have run: a run narrowed with
    /// [`Options::profile`](super::Options::profile) or
    /// [`Options::only`](super::Options::only) meets only what it covered.
    pub fn meets(&self, profile: Profile) -> bool {
        super::catalog()
            .iter()
            .filter(|check| check.profile <= profile)
            .all(|check| self.outcome(check.id).is_some_and(Outcome::is_pass))
    }

    /// The highest profile met, if any.
    pub fn profile(&self) -> Option<Profile> {
        [Profile::Full, Profile::Standard, Profile::Minimum]
            .into_iter()
            .find(|p| self.meets(*p))
    }

    /// Panics with the table unless the report [`meets`](Self::meets)
    /// `profile`.
    #[track_caller]
    pub fn assert_meets(&self, profile: Profile) {
        assert!(
            self.meets(profile),
            "the server does not meet the {profile} profile:\n{self}"
        );
    }

    /// One line per check, `id outcome` (no reasons, so it is stable from
    /// run to run), after a `# NAME` title line: the form [`Matrix`] reads
    /// and the repository keeps under `tests/conformance/`.
    pub fn summary(&self, name: &str) -> String {
        let mut out = format!("# {name}\n");
        for r in &self.results {
            out.push_str(r.id);
            out.push(' ');
            out.push_str(r.outcome.word());
            out.push('\n');
        }
        out
    }
}

impl Report {
    /// The checks that did not pass, in catalog order, with `fail` or
    /// `unsupported`: what a server's test asserts it lacks, exactly.
    pub fn not_passed(&self) -> Vec<(&'static str, &'static str)> {
        self.results
            .iter()
            .filter(|r| !r.outcome.is_pass())
            .map(|r| (r.id, r.outcome.word()))
            .collect()
    }

    /// Keeps this report's [`summary`](Self::summary) under `title` in the
    /// file at `path`: panics if the file holds another summary (the
    /// server's behaviour changed, or the file is stale), and, when the
    /// environment variable `BLESS` is set, writes the file instead. This is
    /// how every server in the workspace feeds the README's support matrix
    /// (`scripts/support-matrix` runs the tests with `BLESS=1`).
    #[track_caller]
    pub fn keep_summary(&self, path: impl AsRef<Path>, title: &str) {
        let path = path.as_ref();
        let summary = self.summary(title);
        if std::env::var_os("BLESS").is_some() {
            if let Err(err) = std::fs::write(path, &summary) {
                panic!("cannot write {}: {err}", path.display());
            }
            return;
        }
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            kept == summary,
            "{} is out of date (run scripts/support-matrix); the kit now finds:\n{summary}\nthe file has:\n{kept}",
            path.display()
        );
    }
}

impl fmt::Display for Report {
    /// A table: check, profile, result, and the reason when it did not pass.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.results.iter().map(|r| r.id.len()).max().unwrap_or(5);
        writeln!(f, "{:<width$}  {:<8}  result", "check", "profile")?;
        for r in &self.results {
            write!(
                f,
                "{:<width$}  {:<8}  {}",
                r.id,
                r.profile,
                r.outcome.word()
            )?;
            match &r.outcome {
                Outcome::Pass => writeln!(f)?,
                Outcome::Fail(reason) | Outcome::Unsupported(reason) => writeln!(f, ": {reason}")?,
            }
        }
        let met = self.profile().map_or("none".to_owned(), |p| p.to_string());
        write!(f, "profile met: {met}")
    }
}

/// Several servers' [`Report::summary`] texts as one Markdown table: a row
/// per check, a column per server. The README's support matrix is one.
#[derive(Clone, Debug, Default)]
pub struct Matrix {
    columns: Vec<(String, Vec<(String, String)>)>,
}

impl Matrix {
    /// An empty matrix.
    pub fn new() -> Self {
        Matrix::default()
    }

    /// Adds a column from a summary text (its `# NAME` line is the column
    /// title).
    pub fn column(mut self, summary: &str) -> Self {
        let mut name = String::new();
        let mut cells = Vec::new();
        for line in summary.lines() {
            if let Some(title) = line.strip_prefix("# ") {
                name = title.trim().to_owned();
            } else if let Some((id, word)) = line.split_once(' ') {
                cells.push((id.to_owned(), word.trim().to_owned()));
            }
        }
        self.columns.push((name, cells));
        self
    }

    /// The Markdown table, rows in the kit's catalog order.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("| check | profile |");
        for (name, _) in &self.columns {
            out.push_str(&format!(" {name} |"));
        }
        out.push_str("\n|---|---|");
        out.push_str(&"---|".repeat(self.columns.len()));
        out.push('\n');
        for check in super::catalog() {
            out.push_str(&format!("| `{}` | {} |", check.id, check.profile));
            for (_, cells) in &self.columns {
                let word = cells
                    .iter()
                    .find(|(id, _)| id == check.id)
                    .map_or("not run", |(_, w)| w.as_str());
                let cell = match word {
                    "pass" => "✅",
                    "fail" => "❌",
                    "unsupported" => "➖",
                    _ => "·",
                };
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out.push_str("| **profile met** | |");
        for (_, cells) in &self.columns {
            let met = [Profile::Full, Profile::Standard, Profile::Minimum]
                .into_iter()
                .find(|p| {
                    super::catalog()
                        .iter()
                        .filter(|c| c.profile <= *p)
                        .all(|c| cells.iter().any(|(id, w)| id == c.id && w == "pass"))
                });
            let met = met.map_or("none".to_owned(), |p| p.to_string());
            out.push_str(&format!(" **{met}** |"));
        }
        out.push('\n');
        out
    }
}
