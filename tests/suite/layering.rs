//! The house's floors hold: every `crate::<module>` path in `src/` (imports and inline paths,
//! not comments) is an edge the table below allows, the table itself points one way (down the
//! floors), and no files import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::repo;

/// Each top-level module with its floor and the modules it may use. A module uses only its own
/// floor or below; same-floor edges are listed here on purpose (and checked to form no circle).
const FLOORS: &[(&str, u32, &[&str])] = &[
    ("host", 1, &[]),
    ("diagnostic", 1, &[]),
    ("redact", 1, &[]),
    ("template", 1, &[]),
    ("event", 1, &[]),
    ("aws", 1, &[]),
    ("journal", 1, &[]),
    ("lease", 1, &[]),
    ("lock", 1, &["host", "journal", "lease"]),
    ("runbook", 2, &["diagnostic", "redact", "template"]),
    ("report", 2, &["journal"]),
    ("custody", 2, &["aws", "journal"]),
    ("table", 2, &["aws", "host", "journal", "lock"]),
    (
        "actions",
        3,
        &["aws", "custody", "host", "journal", "runbook"],
    ),
    (
        "check",
        4,
        &["actions", "diagnostic", "runbook", "template"],
    ),
    ("policy", 4, &["actions", "runbook"]),
    ("schema", 4, &["actions", "runbook"]),
    (
        "engine",
        5,
        &[
            "actions", "aws", "check", "custody", "host", "journal", "lease", "lock", "redact",
            "runbook", "table", "template",
        ],
    ),
    ("plan", 5, &["actions", "check", "runbook", "template"]),
    ("deploy", 5, &["actions", "custody", "policy", "runbook"]),
    (
        "trigger",
        6,
        &[
            "check", "engine", "host", "journal", "lease", "runbook", "table", "template",
        ],
    ),
    (
        "worker",
        6,
        &["aws", "check", "engine", "journal", "table", "trigger"],
    ),
    (
        "cli",
        7,
        &[
            "actions",
            "aws",
            "check",
            "custody",
            "deploy",
            "diagnostic",
            "engine",
            "event",
            "host",
            "journal",
            "lock",
            "plan",
            "policy",
            "redact",
            "report",
            "runbook",
            "schema",
            "table",
            "template",
            "trigger",
            "worker",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code with comment lines blanked (doc links name modules without using them);
/// line numbers stay as in the file.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::x` paths, including the names inside `crate::{a, b::c}`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.push(name);
                }
            }
        } else {
            found.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    found
}

fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap();
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

#[test]
fn every_crate_path_runs_down_the_floors() {
    let src = repo("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let table: BTreeMap<&str, (u32, &[&str])> = FLOORS
        .iter()
        .map(|(m, floor, allowed)| (*m, (*floor, *allowed)))
        .collect();
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        // Entry points: the binaries (main.rs, bin/) use the library by its crate name.
        if module == "lib" || module == "main" || module == "bin" {
            continue;
        }
        let Some((_, allowed)) = table.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module `{module}` has no floor in the table",
                file.display()
            ));
            continue;
        };
        for target in crate_paths(&code(file)) {
            if target != module && !allowed.contains(&target.as_str()) {
                wrong.push(format!(
                    "{}: `{module}` uses `crate::{target}`, which the table does not allow",
                    file.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_table_points_down_and_has_no_circle() {
    let floor: BTreeMap<&str, u32> = FLOORS.iter().map(|(m, f, _)| (*m, *f)).collect();
    for (module, own, allowed) in FLOORS {
        for target in *allowed {
            let theirs = floor
                .get(target)
                .unwrap_or_else(|| panic!("`{module}` allows unknown `{target}`"));
            assert!(
                theirs <= own,
                "`{module}` (floor {own}) may not use `{target}` (floor {theirs})"
            );
        }
    }
    let graph: BTreeMap<String, BTreeSet<String>> = FLOORS
        .iter()
        .map(|(m, _, allowed)| {
            (
                m.to_string(),
                allowed.iter().map(|a| a.to_string()).collect(),
            )
        })
        .collect();
    assert_no_circle(&graph, "module");
}

/// Files of one folder that import each other through `super::file` (leaving out `mod.rs`,
/// which declares and re-exports its children) form no circle.
#[test]
fn no_files_import_each_other_in_a_circle() {
    let src = repo("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        if name == "mod" {
            continue;
        }
        let folder = file.parent().unwrap();
        let key = file.strip_prefix(&src).unwrap().display().to_string();
        let text = code(file);
        let mut uses = BTreeSet::new();
        for sibling in files
            .iter()
            .filter(|f| f.parent() == Some(folder) && *f != file)
        {
            let stem = sibling.file_stem().unwrap().to_string_lossy().to_string();
            if stem == "mod" {
                continue;
            }
            let by_super = format!("super::{stem}::");
            let by_super_group = format!("super::{{{stem}");
            if text.contains(&by_super) || text.contains(&by_super_group) {
                uses.insert(sibling.strip_prefix(&src).unwrap().display().to_string());
            }
        }
        graph.insert(key, uses);
    }
    assert_no_circle(&graph, "file");
}

fn assert_no_circle(graph: &BTreeMap<String, BTreeSet<String>>, what: &str) {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, graph, &mut Vec::new(), &mut done) {
            panic!("a {what} circle: {}", circle.join(" → "));
        }
    }
}

/// The library never writes to the terminal: outside `src/cli/`, `src/main.rs`, `src/bin/` (and test
/// code), no print macros and no handles on stdin, stdout or stderr. The engine publishes
/// progress to an observer; the command line renders it.
#[test]
fn only_the_command_line_talks_to_the_terminal() {
    let src = repo("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let print = regex::Regex::new(r"\be?print(ln)?!").unwrap();
    let handle = regex::Regex::new(r"io::std(out|err|in)\(").unwrap();
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative.starts_with("cli")
            || relative.starts_with("bin")
            || relative == Path::new("main.rs")
        {
            continue;
        }
        let text = code(file);
        // Test modules sit at the end of a file, after `#[cfg(test)]`.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            if print.is_match(line) || handle.is_match(line) {
                found.push(format!(
                    "{}:{}: {}",
                    relative.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the library writes to the terminal:\n{}",
        found.join("\n")
    );
}
