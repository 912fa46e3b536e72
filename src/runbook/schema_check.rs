//! Checks a YAML node tree against a JSON Schema (the subset schemars emits), reporting every
//! mismatch with the node's position. This is how the loader finds *all* structural errors in
//! one pass: unknown and missing fields, wrong types, values out of range.

use serde_json::{Value, json};

use super::node::{Kind, Node};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::template::is_template;

/// A schema document: the root (for `$ref`s into `definitions`) and whether template strings
/// stand in for values of any type (true for action inputs, rendered at run time).
pub struct Checker<'a> {
    root: &'a Value,
    templates_allowed: bool,
}

impl<'a> Checker<'a> {
    pub fn new(root: &'a Value, templates_allowed: bool) -> Checker<'a> {
        Checker {
            root,
            templates_allowed,
        }
    }

    /// Checks `node` against the root schema; `field` names the node in messages ("" for
    /// the document itself).
    pub fn check(&self, node: &Node, field: &str, out: &mut Vec<Diagnostic>) {
        self.check_against(node, self.root, field, out);
    }

    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        let mut schema = schema;
        for _ in 0..32 {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let path = reference.trim_start_matches('#');
                    match self.root.pointer(path) {
                        Some(target) => schema = target,
                        None => return schema,
                    }
                }
                None => return schema,
            }
        }
        schema
    }

    fn check_against(&self, node: &Node, schema: &Value, field: &str, out: &mut Vec<Diagnostic>) {
        let schema = self.resolve(schema);
        match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                out.push(Diagnostic::new(
                    node.pos,
                    format!("`{field}` is not allowed here"),
                ));
                return;
            }
            Value::Object(_) => {}
            _ => return,
        }
        if self.templates_allowed && node.as_str().is_some_and(is_template) {
            return; // typed when rendered; checked again at run time
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
                // A documented enum comes out as alternatives of constants: check it as one
                // enum, so the message lists every allowed value.
                match self.constants(alternatives) {
                    Some(values) => {
                        self.check_against(node, &json!({ "enum": values }), field, out)
                    }
                    None => self.check_alternatives(node, alternatives, field, out),
                }
                return;
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.check_against(node, part, field, out);
            }
        }
        if let Some(expected) = schema.get("const") {
            if &node.to_json() != expected {
                out.push(Diagnostic::new(
                    node.pos,
                    format!("{} must be {expected}", field_name(field)),
                ));
            }
            return;
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let value = node.to_json();
            if !values.contains(&value) {
                let names: Vec<String> = values.iter().map(display_json).collect();
                let mut diagnostic = Diagnostic::new(
                    node.pos,
                    format!(
                        "{} must be one of {}, found {}",
                        field_name(field),
                        names.join(", "),
                        display_json(&value)
                    ),
                );
                if let Some(text) = node.as_str() {
                    let candidates: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                    if let Some(help) = did_you_mean(text, candidates) {
                        diagnostic = diagnostic.with_help(help);
                    }
                }
                out.push(diagnostic);
            }
            return;
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| matches_type(node, t)) {
                out.push(Diagnostic::new(
                    node.pos,
                    format!(
                        "{} must be {}, found {}",
                        field_name(field),
                        allowed
                            .iter()
                            .filter(|t| **t != "null")
                            .map(|t| type_words(t))
                            .collect::<Vec<_>>()
                            .join(" or "),
                        node.describe()
                    ),
                ));
                return;
            }
        }
        match &node.kind {
            Kind::Map(_) => self.check_object(node, schema, field, out),
            Kind::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check_against(item, item_schema, &format!("{field}[{i}]"), out);
                    }
                }
            }
            Kind::Int(_) | Kind::Float(_) => check_range(node, schema, field, out),
            _ => {}
        }
    }

    /// The allowed values, when every alternative is a `const` or an `enum`.
    fn constants(&self, alternatives: &[Value]) -> Option<Vec<Value>> {
        let mut values = Vec::new();
        for alternative in alternatives {
            let alternative = self.resolve(alternative);
            if let Some(value) = alternative.get("const") {
                values.push(value.clone());
            } else if let Some(list) = alternative.get("enum").and_then(Value::as_array) {
                values.extend(list.iter().cloned());
            } else {
                return None;
            }
        }
        Some(values)
    }

    fn check_alternatives(
        &self,
        node: &Node,
        alternatives: &[Value],
        field: &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let mut best: Option<Vec<Diagnostic>> = None;
        for alternative in alternatives {
            let mut errors = Vec::new();
            self.check_against(node, alternative, field, &mut errors);
            if errors.is_empty() {
                return;
            }
            // Prefer the alternative whose type matched, i.e. whose errors are deeper down.
            let deeper = errors.iter().all(|e| e.pos != node.pos);
            if best.is_none() || deeper {
                best = Some(errors);
            }
        }
        out.extend(best.unwrap_or_default());
    }

    fn check_object(&self, node: &Node, schema: &Value, field: &str, out: &mut Vec<Diagnostic>) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in node.entries() {
            let Some(name) = key.as_str() else {
                out.push(Diagnostic::new(
                    key.pos,
                    format!("keys must be strings, found {}", key.describe()),
                ));
                continue;
            };
            let path = if field.is_empty() {
                name.to_owned()
            } else {
                format!("{field}.{name}")
            };
            if let Some(property) = properties.and_then(|p| p.get(name)) {
                self.check_against(value, property, &path, out);
                continue;
            }
            match additional {
                Some(Value::Bool(false)) => {
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let mut diagnostic = Diagnostic::new(
                        key.pos,
                        format!(
                            "unknown field `{name}`{}, expected one of {}",
                            in_field(field),
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    if let Some(help) = did_you_mean(name, known) {
                        diagnostic = diagnostic.with_help(help);
                    }
                    out.push(diagnostic);
                }
                Some(schema @ Value::Object(_)) => self.check_against(value, schema, &path, out),
                _ => {}
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if node.get(name).is_none() {
                    out.push(Diagnostic::new(
                        node.pos,
                        format!("missing field `{name}`{}", in_field(field)),
                    ));
                }
            }
        }
    }
}

fn check_range(node: &Node, schema: &Value, field: &str, out: &mut Vec<Diagnostic>) {
    let value = match node.kind {
        Kind::Int(i) => i as f64,
        Kind::Float(f) => f,
        _ => return,
    };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && value < min
    {
        out.push(Diagnostic::new(
            node.pos,
            format!("{} must be at least {min}", field_name(field)),
        ));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && value > max
    {
        out.push(Diagnostic::new(
            node.pos,
            format!("{} must be at most {max}", field_name(field)),
        ));
    }
}

fn matches_type(node: &Node, expected: &str) -> bool {
    matches!(
        (&node.kind, expected),
        (Kind::Null, "null")
            | (Kind::Bool(_), "boolean")
            | (Kind::Int(_), "integer" | "number")
            | (Kind::Float(_), "number")
            | (Kind::Str(_), "string")
            | (Kind::Seq(_), "array")
            | (Kind::Map(_), "object")
    )
}

fn type_words(t: &str) -> &'static str {
    match t {
        "boolean" => "a boolean",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        _ => "null",
    }
}

fn field_name(field: &str) -> String {
    if field.is_empty() {
        "the document".to_owned()
    } else {
        format!("`{field}`")
    }
}

fn in_field(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(" in `{field}`")
    }
}

fn display_json(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}
