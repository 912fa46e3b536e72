//! Shape checks for EventBridge patterns in runbooks, with the position of every mistake, so a
//! pattern that EventBridge would reject (or that silently matches nothing) fails `validate`.

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::runbook::node::{Kind, Node};

/// Content filters EventBridge knows.
const FILTERS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "wildcard",
    "cidr",
];

pub fn check_pattern(pattern: &Node, out: &mut Vec<Diagnostic>) {
    match &pattern.kind {
        Kind::Map(entries) if entries.is_empty() => {
            out.push(Diagnostic::new(
                pattern.pos,
                "an empty pattern matches every event; name at least `source`",
            ));
        }
        Kind::Map(_) => object(pattern, out),
        _ => out.push(Diagnostic::new(
            pattern.pos,
            format!("a pattern must be a mapping, found {}", pattern.describe()),
        )),
    }
}

fn object(node: &Node, out: &mut Vec<Diagnostic>) {
    for (key, value) in node.entries() {
        let Some(name) = key.as_str() else {
            out.push(Diagnostic::new(key.pos, "pattern keys must be strings"));
            continue;
        };
        if name == "$or" {
            match &value.kind {
                Kind::Seq(alternatives) if alternatives.len() >= 2 => {
                    for alternative in alternatives {
                        check_pattern(alternative, out);
                    }
                }
                _ => out.push(Diagnostic::new(
                    value.pos,
                    "`$or` takes a list of at least two patterns",
                )),
            }
            continue;
        }
        match &value.kind {
            Kind::Map(_) => object(value, out),
            Kind::Seq(rules) if rules.is_empty() => {
                out.push(Diagnostic::new(
                    value.pos,
                    format!("`{name}`: an empty list matches nothing"),
                ));
            }
            Kind::Seq(rules) => rules.iter().for_each(|rule| self::rule(name, rule, out)),
            _ => out.push(
                Diagnostic::new(value.pos, format!("`{name}`: pattern values must be lists"))
                    .with_help(format!("write `{name}: [{}]`", scalar_text(value))),
            ),
        }
    }
}

fn rule(field: &str, rule: &Node, out: &mut Vec<Diagnostic>) {
    match &rule.kind {
        Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) | Kind::Str(_) => {}
        Kind::Seq(_) => out.push(Diagnostic::new(
            rule.pos,
            format!("`{field}`: lists cannot nest"),
        )),
        Kind::Map(entries) => {
            if entries.len() != 1 {
                out.push(Diagnostic::new(
                    rule.pos,
                    format!("`{field}`: a filter has exactly one key, e.g. `{{ prefix: \"x\" }}`"),
                ));
                return;
            }
            let (key, operand) = &entries[0];
            let name = key.as_str().unwrap_or_default();
            if !FILTERS.contains(&name) {
                let mut diagnostic =
                    Diagnostic::new(key.pos, format!("unknown pattern filter `{name}`"));
                diagnostic = match did_you_mean(name, FILTERS.iter().copied()) {
                    Some(help) => diagnostic.with_help(help),
                    None => diagnostic.with_help(format!("filters: {}", FILTERS.join(", "))),
                };
                out.push(diagnostic);
                return;
            }
            filter(name, operand, out);
        }
    }
}

fn filter(name: &str, operand: &Node, out: &mut Vec<Diagnostic>) {
    let mut bad = |message: String| out.push(Diagnostic::new(operand.pos, message));
    match name {
        "prefix" | "suffix" => match &operand.kind {
            Kind::Str(_) => {}
            Kind::Map(inner) if inner.len() == 1 && inner[0].0.as_str() == Some("equals-ignore-case") && inner[0].1.as_str().is_some() => {}
            _ => bad(format!("`{name}` takes a string (or `{{ equals-ignore-case: \"...\" }}`)")),
        },
        "equals-ignore-case" | "wildcard" if operand.as_str().is_none() => {
            bad(format!("`{name}` takes a string"));
        }
        "exists" if !matches!(operand.kind, Kind::Bool(_)) => {
            bad("`exists` takes true or false".into());
        }
        "cidr" => {
            let valid = operand.as_str().and_then(|c| c.split_once('/')).is_some_and(|(ip, bits)| {
                ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 128)
            });
            if !valid {
                bad("`cidr` takes a network like \"10.0.0.0/24\"".into());
            }
        }
        "numeric" => numeric(operand, out),
        "anything-but" => match &operand.kind {
            Kind::Str(_) | Kind::Int(_) | Kind::Float(_) => {}
            Kind::Seq(items) if !items.is_empty() && items.iter().all(|i| matches!(i.kind, Kind::Str(_) | Kind::Int(_) | Kind::Float(_))) => {}
            Kind::Map(inner)
                if inner.len() == 1
                    && matches!(inner[0].0.as_str(), Some("prefix" | "suffix" | "equals-ignore-case" | "wildcard")) => {}
            _ => bad("`anything-but` takes a value, a list of values, or one of prefix/suffix/equals-ignore-case/wildcard".into()),
        },
        _ => {}
    }
}

fn numeric(operand: &Node, out: &mut Vec<Diagnostic>) {
    let items = operand.items();
    let shape_ok = matches!(operand.kind, Kind::Seq(_)) && (items.len() == 2 || items.len() == 4);
    if !shape_ok {
        out.push(
            Diagnostic::new(operand.pos, "`numeric` takes one or two comparisons").with_help(
                "for example `numeric: [\">=\", 7]` or `numeric: [\">\", 0, \"<=\", 5]`",
            ),
        );
        return;
    }
    for pair in items.chunks(2) {
        match pair[0].as_str() {
            Some("=" | ">" | ">=" | "<" | "<=") => {}
            _ => out.push(Diagnostic::new(
                pair[0].pos,
                "numeric operators are =, >, >=, <, <=",
            )),
        }
        if !matches!(pair[1].kind, Kind::Int(_) | Kind::Float(_)) {
            out.push(Diagnostic::new(
                pair[1].pos,
                format!(
                    "numeric bound must be a number, found {}",
                    pair[1].describe()
                ),
            ));
        }
    }
}

fn scalar_text(node: &Node) -> String {
    match &node.kind {
        Kind::Str(s) => format!("\"{s}\""),
        other => format!(
            "{}",
            Node {
                pos: node.pos,
                kind: other.clone()
            }
            .to_json()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::parse::parse_yaml;

    fn errors(yaml: &str) -> Vec<(u32, u32, String)> {
        let node = parse_yaml(yaml).unwrap();
        let mut out = Vec::new();
        check_pattern(&node, &mut out);
        out.into_iter()
            .map(|d| (d.pos.line, d.pos.col, d.message))
            .collect()
    }

    #[test]
    fn well_formed_patterns_pass() {
        let yaml = r#"
source: ["aws.guardduty"]
detail-type: ["GuardDuty Finding"]
detail:
  type: [{ prefix: "UnauthorizedAccess:EC2/" }, { prefix: { equals-ignore-case: "backdoor:ec2/" } }]
  severity: [{ numeric: [">=", 7] }]
  resource: { resourceType: ["Instance"] }
  region: [{ anything-but: ["us-gov-west-1"] }]
  ip: [{ cidr: "10.0.0.0/8" }]
  gone: [{ exists: false }]
$or:
  - account: ["111122223333"]
  - account: [{ wildcard: "1234*" }]
"#;
        assert_eq!(errors(yaml), Vec::<(u32, u32, String)>::new());
    }

    #[test]
    fn mistakes_are_placed() {
        let cases: &[(&str, (u32, u32), &str)] = &[
            (
                "source: aws.guardduty\n",
                (1, 9),
                "pattern values must be lists",
            ),
            ("source: []\n", (1, 9), "empty list"),
            (
                "detail:\n  type: [{ prefx: \"x\" }]\n",
                (2, 12),
                "unknown pattern filter `prefx`",
            ),
            (
                "detail:\n  severity: [{ numeric: [\">=\"] }]\n",
                (2, 25),
                "one or two comparisons",
            ),
            (
                "detail:\n  severity: [{ numeric: [\"~\", 7] }]\n",
                (2, 26),
                "numeric operators",
            ),
            (
                "detail:\n  severity: [{ numeric: [\">\", \"7\"] }]\n",
                (2, 31),
                "bound must be a number",
            ),
            (
                "detail:\n  x: [{ exists: \"yes\" }]\n",
                (2, 17),
                "`exists` takes true or false",
            ),
            (
                "detail:\n  x: [{ cidr: \"10.0.0.0\" }]\n",
                (2, 15),
                "`cidr` takes a network",
            ),
            ("$or: [{ a: [1] }]\n", (1, 6), "at least two patterns"),
            ("a: [[1]]\n", (1, 5), "lists cannot nest"),
            ("a: [{ prefix: x, suffix: y }]\n", (1, 5), "exactly one key"),
        ];
        for (yaml, (line, col), message) in cases {
            let found = errors(yaml);
            assert!(
                found
                    .iter()
                    .any(|(l, c, m)| (l, c) == (line, col) && m.contains(message)),
                "{yaml:?}: expected {line}:{col} {message}, got {found:?}"
            );
        }
    }
}
