//! SPEC.md and the code list the same lint rules and OWIN keys.
//!
//! SPEC.md §7 has the rule table between `<!-- lint-rules:start -->` and
//! `<!-- lint-rules:end -->`; §8 has the key table between
//! `<!-- owin-keys:start -->` and `<!-- owin-keys:end -->`. These tests fail
//! with a list of what differs.

use serverbridge::lint::{Side, RULES};
use serverbridge::owin::keys;

fn spec() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md"))
        .expect("SPEC.md is readable")
}

/// The data rows of the markdown table between the two markers: each row's
/// cells, trimmed. The header row and the `|---|` separator are skipped.
fn table(spec: &str, name: &str) -> Vec<Vec<String>> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let from = spec
        .find(&start)
        .unwrap_or_else(|| panic!("SPEC.md has no {start} marker"));
    let to = spec[from..]
        .find(&end)
        .unwrap_or_else(|| panic!("SPEC.md has no {end} marker after {start}"))
        + from;
    let rows: Vec<Vec<String>> = spec[from + start.len()..to]
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            assert!(
                line.starts_with('|') && line.ends_with('|'),
                "SPEC.md {name} table: not a table row: {line:?}"
            );
            line[1..line.len() - 1]
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect();
    assert!(rows.len() >= 2, "SPEC.md {name} table has no header");
    assert!(
        rows[1]
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':')),
        "SPEC.md {name} table: the second row is not a separator: {:?}",
        rows[1]
    );
    rows.into_iter().skip(2).collect()
}

/// `` `x` `` → `x`; anything else as it is.
fn unquote(cell: &str) -> &str {
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or(cell)
}

/// Compares two id lists and says what differs: missing, extra, order.
fn list_diff(what: &str, spec: &[&str], code: &[&str], problems: &mut Vec<String>) {
    for id in code.iter().filter(|id| !spec.contains(id)) {
        problems.push(format!("{what} {id:?} is in the code but not in SPEC.md"));
    }
    for id in spec.iter().filter(|id| !code.contains(id)) {
        problems.push(format!("{what} {id:?} is in SPEC.md but not in the code"));
    }
    for (i, id) in spec.iter().enumerate() {
        if spec[..i].contains(id) {
            problems.push(format!("{what} {id:?} is listed twice in SPEC.md"));
        }
    }
    for (i, id) in code.iter().enumerate() {
        if code[..i].contains(id) {
            problems.push(format!("{what} {id:?} is listed twice in the code"));
        }
    }
    if problems.is_empty() && spec != code {
        let first = spec.iter().zip(code).position(|(s, c)| s != c).unwrap_or(0);
        problems.push(format!(
            "{what}s are in a different order: row {} is {:?} in SPEC.md but {:?} in the code\n  SPEC.md: {spec:?}\n  code:    {code:?}",
            first + 1,
            spec[first],
            code[first]
        ));
    }
}

fn check(problems: Vec<String>, what: &str) {
    assert!(
        problems.is_empty(),
        "SPEC.md and the code disagree on the {what}:\n- {}",
        problems.join("\n- ")
    );
}

/// What differs between SPEC.md's rule table and `lint::RULES`.
fn lint_rule_problems(spec: &str) -> Vec<String> {
    let rows = table(spec, "lint-rules");
    let mut problems = Vec::new();
    for row in &rows {
        if row.len() != 3 {
            problems.push(format!(
                "row {row:?} does not have 3 cells (rule, side, requirement)"
            ));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let spec_ids: Vec<&str> = rows.iter().map(|r| unquote(&r[0])).collect();
    let code_ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    list_diff("rule", &spec_ids, &code_ids, &mut problems);
    for rule in RULES {
        let Some(row) = rows.iter().find(|r| unquote(&r[0]) == rule.id) else {
            continue;
        };
        let side = match rule.side {
            Side::Server => "server",
            Side::Application => "application",
        };
        if row[1] != side {
            problems.push(format!(
                "rule {:?}: side is {:?} in SPEC.md but {side:?} in the code",
                rule.id, row[1]
            ));
        }
        if row[2] != rule.text {
            problems.push(format!(
                "rule {:?}: requirement differs\n    SPEC.md: {:?}\n    code:    {:?}",
                rule.id, row[2], rule.text
            ));
        }
    }
    problems
}

/// What differs between SPEC.md's key table and `owin::keys`.
fn owin_key_problems(spec: &str) -> Vec<String> {
    let rows = table(spec, "owin-keys");
    let mut problems = Vec::new();
    for row in &rows {
        if row.len() != 4 {
            problems.push(format!(
                "row {row:?} does not have 4 cells (key, value, maps to, writable)"
            ));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let spec_keys: Vec<&str> = rows.iter().map(|r| unquote(&r[0])).collect();
    list_diff("key", &spec_keys, keys::ALL, &mut problems);
    for row in &rows {
        let key = unquote(&row[0]);
        let writable = row[3].as_str();
        let read_only_in_code = keys::READ_ONLY.contains(&key);
        match (writable, read_only_in_code) {
            ("no", true) => {}
            ("no", false) => problems.push(format!(
                "key {key:?}: SPEC.md says it is not writable, but it is not in keys::READ_ONLY"
            )),
            (w, true) => problems.push(format!(
                "key {key:?}: SPEC.md says writable {w:?}, but it is in keys::READ_ONLY"
            )),
            (w, false) if w == "yes" || w.starts_with("yes (") => {}
            (w, false) => problems.push(format!(
                "key {key:?}: the writable cell is {w:?}, expected \"yes\", \"yes (…)\" or \"no\""
            )),
        }
    }
    for key in keys::READ_ONLY {
        if !keys::ALL.contains(key) {
            problems.push(format!(
                "keys::READ_ONLY has {key:?}, which is not in keys::ALL"
            ));
        }
    }
    problems
}

#[test]
fn lint_rules_match_the_spec() {
    check(
        lint_rule_problems(&spec()),
        "lint rules (SPEC.md §7 vs lint::RULES)",
    );
}

#[test]
fn owin_keys_match_the_spec() {
    check(
        owin_key_problems(&spec()),
        "OWIN keys (SPEC.md §8 vs owin::keys)",
    );
}

#[test]
fn a_doctored_spec_is_caught_and_explained() {
    // The checks are only as good as their failure messages.
    let spec = spec();
    let doctor = |from: &str, to: &str| {
        assert!(spec.contains(from), "SPEC.md no longer has {from:?}");
        spec.replacen(from, to, 1)
    };

    let renamed = doctor("| `request.query` |", "| `request.querystring` |");
    assert_eq!(
        lint_rule_problems(&renamed),
        vec![
            "rule \"request.query\" is in the code but not in SPEC.md",
            "rule \"request.querystring\" is in SPEC.md but not in the code",
        ]
    );

    let wrong_side = doctor(
        "| `request.host` | server |",
        "| `request.host` | application |",
    );
    assert_eq!(
        lint_rule_problems(&wrong_side),
        vec![
            "rule \"request.host\": side is \"application\" in SPEC.md but \"server\" in the code"
        ]
    );

    let reworded = doctor(
        "The query does not start with '?'.",
        "The query has no leading '?'.",
    );
    let problems = lint_rule_problems(&reworded);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("rule \"request.query\": requirement differs"),
        "{problems:?}"
    );

    let first = format!("| `{}` |", RULES[0].id);
    let second = format!("| `{}` |", RULES[1].id);
    let swapped = spec
        .replacen(&first, "| `@placeholder@` |", 1)
        .replacen(&second, &first, 1)
        .replacen("| `@placeholder@` |", &second, 1);
    let problems = lint_rule_problems(&swapped);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("different order: row 1")),
        "{problems:?}"
    );

    let writable_version = doctor(
        "| `owin.Version` | `Str` (`1.0.1`) | constant | no |",
        "| `owin.Version` | `Str` (`1.0.1`) | constant | yes |",
    );
    assert_eq!(
        owin_key_problems(&writable_version),
        vec!["key \"owin.Version\": SPEC.md says writable \"yes\", but it is in keys::READ_ONLY"]
    );

    let read_only_path = doctor(
        "| `owin.RequestPath` | `Str` | `RequestFeature::path` | yes |",
        "| `owin.RequestPath` | `Str` | `RequestFeature::path` | no |",
    );
    assert_eq!(
        owin_key_problems(&read_only_path),
        vec!["key \"owin.RequestPath\": SPEC.md says it is not writable, but it is not in keys::READ_ONLY"]
    );

    let dropped = doctor(
        "| `host.Addresses` | `Addresses` | `ServerAddresses` | yes |\n",
        "",
    );
    assert_eq!(
        owin_key_problems(&dropped),
        vec!["key \"host.Addresses\" is in the code but not in SPEC.md"]
    );
}
