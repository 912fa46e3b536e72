//! Handlebars templates in runbooks: strict (a missing variable is an error), no HTML
//! escaping, and only side-effect-free helpers (no partials, no file, environment or script
//! access). A string that is exactly one `{{path}}` renders to the typed value at that path,
//! so a list parameter stays a list and a number stays a number.

use handlebars::template::{BlockParam, HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{Handlebars, Path};
use serde_json::Value;

/// Helpers a runbook may use. All of them are pure functions of their arguments.
pub const ALLOWED_HELPERS: &[&str] = &[
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
    "len",
    "last_part",
];

// `{{last_part text sep}}`: what follows the last `sep` — the id in an ARN
// (`arn:…:instance/i-0abc` with "/"), the instance in a role session (`AROA…:i-0abc` with ":").
handlebars::handlebars_helper!(last_part: |text: str, separator: str| {
    text.rsplit(separator).next().unwrap_or_default().to_owned()
});

/// The roots a template may read from.
pub const ROOTS: &[&str] = &["params", "steps", "event", "run", "item"];

/// The fields of `run`.
pub const RUN_FIELDS: &[&str] = &["id", "mode", "started_at", "account", "sealed"];
/// Known before the run starts, so parameter defaults may use them (`run.account` is known
/// only once the caller's identity and the finding's account are).
pub const RUN_FIELDS_AT_START: &[&str] = &["id", "mode", "started_at"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("template syntax error: {message}")]
    Syntax {
        message: String,
        /// 1-based line and column inside the template text.
        line: usize,
        col: usize,
    },
    #[error("template `{template}` failed to render: {message}")]
    Render { template: String, message: String },
    #[error("`{path}` is not defined (in template `{template}`)")]
    Missing { template: String, path: String },
}

/// A variable reference found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As written, e.g. `steps.approve.outputs.approved`.
    pub raw: String,
    /// Path segments, without `this.` / `@root.` prefixes.
    pub segments: Vec<String>,
    /// Byte offset of the reference in the template text.
    pub offset: usize,
}

impl Reference {
    pub fn root(&self) -> &str {
        self.segments.first().map_or("", String::as_str)
    }
}

/// What a template reads and calls, for validation and planning.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// References resolved from the template's root context.
    pub references: Vec<Reference>,
    /// Helpers called, with the byte offset of their name.
    pub helpers: Vec<(String, usize)>,
    /// Constructs that are refused (partials, decorators), with their offset.
    pub unsupported: Vec<(String, usize)>,
    /// `Some` when the whole template is exactly one `{{path}}` expression.
    pub single_path: Option<Reference>,
}

pub fn is_template(text: &str) -> bool {
    text.contains("{{")
}

/// Parses a template and lists what it references.
pub fn analyze(text: &str) -> Result<Analysis, TemplateError> {
    let template = Template::compile(text).map_err(|e| {
        let (line, col) = e.pos().unwrap_or((1, 1));
        TemplateError::Syntax {
            message: e.reason().to_string(),
            line,
            col,
        }
    })?;
    let mut analysis = Analysis::default();
    let mut walker = Walker {
        text,
        analysis: &mut analysis,
        cursor: 0,
    };
    walker.template(&template, 0);
    if let [TemplateElement::Expression(helper)] = template.elements.as_slice()
        && text.trim_start().starts_with("{{")
        && text.trim_end().ends_with("}}")
        && helper.params.is_empty()
        && helper.hash.is_empty()
        && analysis.helpers.is_empty()
        && analysis.references.len() == 1
    {
        analysis.single_path = analysis.references.first().cloned();
    }
    Ok(analysis)
}

struct Walker<'a> {
    text: &'a str,
    analysis: &'a mut Analysis,
    /// Where to start looking for the next name in the text, so repeated names get their own offsets.
    cursor: usize,
}

impl Walker<'_> {
    fn offset_of(&mut self, needle: &str) -> usize {
        let found = self.text[self.cursor..]
            .find(needle)
            .map(|i| i + self.cursor)
            .or_else(|| self.text.find(needle))
            .unwrap_or(0);
        self.cursor = found.min(self.text.len());
        found
    }

    /// `depth` counts enclosing `each`/`with` blocks, where relative paths read the block's
    /// own context and cannot be checked against the runbook.
    fn template(&mut self, template: &Template, depth: usize) {
        for element in &template.elements {
            match element {
                TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
                TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                    self.helper(helper, depth, false);
                }
                TemplateElement::HelperBlock(helper) => self.helper(helper, depth, true),
                TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                    let offset = self.offset_of("{{*");
                    self.analysis
                        .unsupported
                        .push(("decorators are not supported".into(), offset));
                }
                TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                    let offset = self.offset_of("{{>");
                    self.analysis
                        .unsupported
                        .push(("partials are not supported".into(), offset));
                }
                _ => {}
            }
        }
    }

    fn helper(&mut self, helper: &HelperTemplate, depth: usize, block: bool) {
        let is_call = block || !helper.params.is_empty() || !helper.hash.is_empty();
        match &helper.name {
            Parameter::Name(name) if is_call || ALLOWED_HELPERS.contains(&name.as_str()) => {
                let offset = self.offset_of(name);
                self.analysis.helpers.push((name.clone(), offset));
            }
            Parameter::Name(name) => self.path_raw(name, depth),
            Parameter::Path(path) => {
                if is_call {
                    let raw = path_raw(path);
                    let offset = self.offset_of(&raw);
                    self.analysis.helpers.push((raw, offset));
                } else {
                    self.path(path, depth);
                }
            }
            other => self.parameter(other, depth),
        }
        for parameter in &helper.params {
            self.parameter(parameter, depth);
        }
        for parameter in helper.hash.values() {
            self.parameter(parameter, depth);
        }
        let opens_scope = matches!(&helper.name, Parameter::Name(n) if n == "each" || n == "with")
            || helper.block_param.is_some();
        let inner = if opens_scope { depth + 1 } else { depth };
        if let Some(BlockParam::Single(_) | BlockParam::Pair(_)) = &helper.block_param {
            // Block params (`as |x|`) are local names; they are covered by the scope depth.
        }
        if let Some(body) = &helper.template {
            self.template(body, inner);
        }
        if let Some(inverse) = &helper.inverse {
            self.template(inverse, depth);
        }
    }

    fn parameter(&mut self, parameter: &Parameter, depth: usize) {
        match parameter {
            Parameter::Path(path) => self.path(path, depth),
            Parameter::Name(name) => self.path_raw(name, depth),
            Parameter::Subexpression(sub) => match sub.element.as_ref() {
                TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                    self.helper(helper, depth, false)
                }
                TemplateElement::HelperBlock(helper) => self.helper(helper, depth, true),
                _ => {}
            },
            _ => {} // literals
        }
    }

    fn path(&mut self, path: &Path, depth: usize) {
        let raw = path_raw(path);
        self.path_raw(&raw, depth);
    }

    fn path_raw(&mut self, raw: &str, depth: usize) {
        let offset = self.offset_of(raw);
        if raw.starts_with('@') && !raw.starts_with("@root") {
            return; // @index, @key, @first: data of the enclosing block
        }
        let rooted = raw.strip_prefix("@root.").map(str::to_owned);
        let relative = raw
            .strip_prefix("this.")
            .or_else(|| raw.strip_prefix("./"))
            .unwrap_or(raw);
        if rooted.is_none() && (depth > 0 || raw == "this" || raw.starts_with("../")) {
            return; // inside an each/with block, relative paths read the block's context
        }
        let path = rooted.as_deref().unwrap_or(relative);
        self.analysis.references.push(Reference {
            raw: raw.to_owned(),
            segments: split_path(path),
            offset,
        });
    }
}

fn path_raw(path: &Path) -> String {
    match path {
        Path::Relative((_, raw)) => raw.clone(),
        Path::Local((_, _, raw)) => raw.clone(),
    }
}

/// `steps.[my step].outputs.list.[0]` → `steps`, `my step`, `outputs`, `list`, `0`.
pub fn split_path(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut in_brackets = false;
    for c in path.chars() {
        match c {
            '[' if !in_brackets && current.is_empty() => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            '.' | '/' if !in_brackets => segments.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    segments.push(current);
    segments.retain(|s| !s.is_empty());
    segments
}

/// Looks a path up in a JSON context, as a strict template would.
pub fn lookup<'v>(context: &'v Value, segments: &[String]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(context, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// The template engine, configured for runbooks.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        // `log` would write template values (possibly secrets) to the logs; `raw` is harmless
        // but useless here. Everything not listed in ALLOWED_HELPERS goes.
        for name in ["log", "raw"] {
            registry.unregister_helper(name);
        }
        registry.register_helper("last_part", Box::new(last_part));
        Templates { registry }
    }

    /// Renders to text.
    pub fn render_string(&self, text: &str, context: &Value) -> Result<String, TemplateError> {
        if !is_template(text) {
            return Ok(text.to_owned());
        }
        self.registry
            .render_template(text, context)
            .map_err(|e| TemplateError::Render {
                template: text.to_owned(),
                message: render_error_message(&e),
            })
    }

    /// Renders to a typed value: `{{params.ids}}` gives the list itself.
    pub fn render_value(&self, text: &str, context: &Value) -> Result<Value, TemplateError> {
        if !is_template(text) {
            return Ok(Value::String(text.to_owned()));
        }
        let analysis = analyze(text)?;
        if let Some(reference) = analysis.single_path {
            return lookup(context, &reference.segments)
                .cloned()
                .ok_or_else(|| TemplateError::Missing {
                    template: text.to_owned(),
                    path: reference.raw,
                });
        }
        self.render_string(text, context).map(Value::String)
    }

    /// Renders every string inside a JSON tree.
    pub fn render_tree(&self, value: &Value, context: &Value) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(text) => self.render_value(text, context)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_tree(v, context))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_tree(v, context)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }
}

fn render_error_message(error: &handlebars::RenderError) -> String {
    use handlebars::RenderErrorReason as R;
    match error.reason() {
        R::MissingVariable(Some(path)) => format!("`{path}` is not defined"),
        R::HelperNotFound(name) => format!("unknown helper `{name}`"),
        other => other.to_string(),
    }
}

/// Whether a rendered `when` condition holds. `false`, `0`, empty, `null` and empty lists are
/// false; the strings "false", "0" and "null" too, since helpers render their results as text.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => {
            let s = s.trim();
            !(s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0" || s == "null")
        }
        Value::Array(items) => !items.is_empty(),
        Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({
            "params": {"instance_id": "i-0abc", "ids": ["i-1", "i-2"], "count": 3, "html": "<a&b>"},
            "steps": {"approve": {"outputs": {"approved": true}}},
            "run": {"id": "r-1", "mode": "live", "started_at": "2026-01-01T00:00:00Z"},
        })
    }

    #[test]
    fn single_expression_keeps_its_type() {
        let engine = Templates::new();
        assert_eq!(
            engine.render_value("{{params.ids}}", &context()).unwrap(),
            json!(["i-1", "i-2"])
        );
        assert_eq!(
            engine
                .render_value("{{ params.count }}", &context())
                .unwrap(),
            json!(3)
        );
        assert_eq!(
            engine
                .render_value("{{steps.approve.outputs.approved}}", &context())
                .unwrap(),
            json!(true)
        );
    }

    #[test]
    fn mixed_text_renders_to_a_string_without_escaping() {
        let engine = Templates::new();
        assert_eq!(
            engine
                .render_value("case {{run.id}}: {{params.html}}", &context())
                .unwrap(),
            json!("case r-1: <a&b>")
        );
    }

    #[test]
    fn missing_variables_are_errors() {
        let engine = Templates::new();
        let err = engine
            .render_value("{{params.nope}}", &context())
            .unwrap_err();
        assert!(matches!(err, TemplateError::Missing { ref path, .. } if path == "params.nope"));
        let err = engine
            .render_value("x {{params.nope}}", &context())
            .unwrap_err();
        assert!(err.to_string().contains("params.nope"), "{err}");
    }

    #[test]
    fn helpers_compare_and_logs_are_not_available() {
        let engine = Templates::new();
        assert_eq!(
            engine
                .render_value("{{eq params.count 3}}", &context())
                .unwrap(),
            json!("true")
        );
        assert!(
            engine
                .render_value("{{log params.instance_id}}", &context())
                .is_err()
        );
    }

    #[test]
    fn analysis_lists_references_and_helpers() {
        let analysis = analyze(
            "{{#if (eq params.count 3)}}{{steps.approve.outputs.approved}}{{/if}} {{item}}",
        )
        .unwrap();
        let refs: Vec<_> = analysis.references.iter().map(|r| r.raw.as_str()).collect();
        assert_eq!(
            refs,
            ["params.count", "steps.approve.outputs.approved", "item"]
        );
        let helpers: Vec<_> = analysis.helpers.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(helpers, ["if", "eq"]);
        assert!(analysis.single_path.is_none());
        assert_eq!(
            analyze("{{ params.ids }}")
                .unwrap()
                .single_path
                .unwrap()
                .segments,
            ["params", "ids"]
        );
    }

    #[test]
    fn each_block_bodies_are_not_checked_as_root_paths() {
        let analysis = analyze("{{#each params.ids}}{{this}}-{{@index}}{{/each}}").unwrap();
        let refs: Vec<_> = analysis.references.iter().map(|r| r.raw.as_str()).collect();
        assert_eq!(refs, ["params.ids"]);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = analyze("{{params.x").unwrap_err();
        assert!(
            matches!(err, TemplateError::Syntax { line: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn partials_are_refused() {
        let analysis = analyze("{{> secret}}").unwrap();
        assert_eq!(analysis.unsupported.len(), 1);
    }

    #[test]
    fn bracket_segments_split() {
        assert_eq!(
            split_path("steps.[my.step].outputs.[0]"),
            ["steps", "my.step", "outputs", "0"]
        );
    }

    #[test]
    fn last_part_takes_the_id_out_of_an_arn() {
        let engine = Templates::new();
        let context = json!({"event": {"arn": "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc", "principal": "AROAEXAMPLE:i-0def"}});
        assert_eq!(
            engine
                .render_value("{{last_part event.arn \"/\"}}", &context)
                .unwrap(),
            json!("i-0abc")
        );
        assert_eq!(
            engine
                .render_value("{{last_part event.principal \":\"}}", &context)
                .unwrap(),
            json!("i-0def")
        );
    }

    #[test]
    fn truthiness() {
        for falsy in [
            json!(false),
            json!(""),
            json!("false"),
            json!(0),
            json!(null),
            json!([]),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for t in [
            json!(true),
            json!("true"),
            json!("yes"),
            json!(1),
            json!(["x"]),
        ] {
            assert!(truthy(&t), "{t}");
        }
    }
}
