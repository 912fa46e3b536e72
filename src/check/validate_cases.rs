//! Invalid runbooks, one error each, with the exact line and column expected — a table in the
//! style of `just`'s analyzer tests. A passing case proves both that the error is caught and
//! that it points at the right place.

use super::from_str;

const HEAD: &str = "version: 1\nname: t\n";

/// Runs one case: `body` follows `version`/`name` (lines 1–2) unless it starts with `!`, in
/// which case it is the whole document.
fn case(name: &str, body: &str, line: u32, col: u32, message: &str) {
    let text = match body.strip_prefix('!') {
        Some(whole) => whole.to_owned(),
        None => format!("{HEAD}{body}"),
    };
    let diagnostics = match from_str(&text) {
        Ok(_) => panic!("case `{name}`: expected an error, the runbook was accepted"),
        Err(d) => d,
    };
    let found = diagnostics
        .iter()
        .any(|d| d.pos.line == line && d.pos.col == col && d.message.contains(message));
    assert!(
        found,
        "case `{name}`: expected {line}:{col} `{message}`, got:\n{}",
        diagnostics
            .iter()
            .map(|d| format!("  {}:{}: {}", d.pos.line, d.pos.col, d.message))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

const LOG: &str = "steps:\n  - id: a\n    action: core.log\n    with: { message: hi }\n";

#[test]
fn yaml_syntax_error() {
    case("yaml", "steps: [\n  - id: a\n", 4, 3, "invalid YAML");
}

#[test]
fn duplicate_key() {
    case("dup", "name: u\nsteps: []\n", 3, 1, "duplicate");
}

#[test]
fn unknown_top_level_key() {
    case(
        "top",
        &format!("colour: red\n{LOG}"),
        3,
        1,
        "unknown field `colour`",
    );
}

#[test]
fn unknown_step_key() {
    case(
        "step key",
        "steps:\n  - id: a\n    action: core.log\n    whith: { message: hi }\n",
        6,
        5,
        "unknown field `whith`",
    );
}

#[test]
fn wrong_version() {
    case(
        "version",
        &format!("!version: 3\nname: t\n{LOG}"),
        1,
        10,
        "unsupported runbook version 3",
    );
}

#[test]
fn missing_steps() {
    case(
        "no steps",
        "description: x\n",
        1,
        1,
        "missing field `steps`",
    );
}

#[test]
fn steps_of_wrong_type() {
    case(
        "steps type",
        "steps: many\n",
        3,
        8,
        "`steps` must be a list, found a string",
    );
}

#[test]
fn duplicate_step_id() {
    case(
        "dup id",
        "steps:\n  - { id: a, action: core.log, with: { message: x } }\n  - { id: a, action: core.log, with: { message: y } }\n",
        5,
        11,
        "duplicate step id `a`",
    );
}

/// The engine journals its own calls under a few step names; a runbook step of the same name
/// would have its calls read as the engine's.
#[test]
fn an_engine_step_name_is_refused() {
    case(
        "engine name",
        "steps:\n  - { id: notify, action: core.log, with: { message: x } }\n",
        4,
        11,
        "step id `notify` is the engine's own",
    );
}

#[test]
fn unknown_action_with_suggestion() {
    let text =
        format!("{HEAD}steps:\n  - id: a\n    action: core.aprove\n    with: {{ prompt: ok }}\n");
    let diagnostics = from_str(&text).unwrap_err();
    let d = &diagnostics[0];
    assert_eq!((d.pos.line, d.pos.col), (5, 13));
    assert_eq!(d.message, "unknown action `core.aprove`");
    assert_eq!(d.help.as_deref(), Some("did you mean `core.approve`?"));
}

#[test]
fn missing_input_field() {
    case(
        "missing input",
        "steps:\n  - id: a\n    action: core.log\n    with: {}\n",
        6,
        11,
        "missing field `message` in `with`",
    );
}

#[test]
fn missing_with_block() {
    case(
        "no with",
        "steps:\n  - id: a\n    action: core.approve\n",
        5,
        13,
        "missing field `prompt` in `with`",
    );
}

#[test]
fn unknown_input_field() {
    case(
        "unknown input",
        "steps:\n  - id: a\n    action: core.log\n    with:\n      message: hi\n      level: warn\n",
        8,
        7,
        "unknown field `level` in `with`",
    );
}

#[test]
fn wrong_input_type() {
    case(
        "input type",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: [1, 2] }\n",
        6,
        22,
        "`with.message` must be a string, found a list",
    );
}

#[test]
fn template_syntax_error() {
    case(
        "syntax",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"x {{params.y\" }\n",
        6,
        35,
        "template syntax error",
    );
}

#[test]
fn unknown_parameter_reference() {
    case(
        "unknown param",
        "parameters:\n  instance_id: { type: string }\nsteps:\n  - id: a\n    action: core.log\n    with: { message: \"{{params.instanceid}}\" }\n",
        8,
        25,
        "unknown parameter `instanceid`",
    );
}

#[test]
fn reference_to_later_step() {
    case(
        "later",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{steps.b.outputs.x}}\" }\n  - { id: b, action: core.log, with: { message: y } }\n",
        6,
        25,
        "step `b` runs later (line 7)",
    );
}

#[test]
fn reference_to_missing_step() {
    case(
        "missing step",
        "steps:\n  - { id: a, action: core.log, with: { message: x } }\n  - id: b\n    action: core.log\n    when: \"{{steps.zz.outputs.approved}}\"\n    with: { message: y }\n",
        7,
        14,
        "unknown step `zz`",
    );
}

#[test]
fn reference_to_own_outputs() {
    case(
        "self",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{steps.a.outputs.x}}\" }\n",
        6,
        25,
        "cannot use its own outputs",
    );
}

#[test]
fn item_outside_for_each() {
    case(
        "item",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{item}}\" }\n",
        6,
        25,
        "`item` is only defined",
    );
}

#[test]
fn item_inside_for_each_expression() {
    case(
        "item in for_each",
        "steps:\n  - id: a\n    action: core.log\n    for_each: \"{{item}}\"\n    with: { message: \"{{item}}\" }\n",
        6,
        18,
        "`item` is only defined",
    );
}

#[test]
fn bad_duration() {
    case(
        "duration",
        "steps:\n  - id: a\n    action: core.log\n    timeout: 10 minutes\n    with: { message: x }\n",
        6,
        14,
        "invalid duration `10 minutes`",
    );
}

#[test]
fn invalid_pattern() {
    case(
        "regex",
        &format!("parameters:\n  x: {{ type: string, pattern: \"([a-z\" }}\n{LOG}"),
        4,
        31,
        "not a valid regular expression",
    );
}

#[test]
fn default_not_matching_pattern() {
    case(
        "default pattern",
        &format!(
            "parameters:\n  x:\n    type: string\n    pattern: \"^i-[0-9a-f]+$\"\n    default: i-xyz\n{LOG}"
        ),
        7,
        14,
        "does not match its own pattern",
    );
}

#[test]
fn default_of_wrong_type() {
    case(
        "default type",
        &format!("parameters:\n  n: {{ type: integer, default: many }}\n{LOG}"),
        4,
        32,
        "default of `n` must be an integer",
    );
}

#[test]
fn unknown_parameter_type() {
    case(
        "param type",
        &format!("parameters:\n  n: {{ type: int }}\n{LOG}"),
        4,
        14,
        "must be one of `string`, `integer`, `boolean`, `list`",
    );
}

#[test]
fn parameter_default_reads_params() {
    case(
        "default scope",
        &format!(
            "parameters:\n  a: {{ type: string }}\n  b: {{ type: string, default: \"{{{{params.a}}}}\" }}\n{LOG}"
        ),
        5,
        34,
        "can only use `run.*`",
    );
}

#[test]
fn unknown_helper() {
    case(
        "helper",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{upper run.id}}\" }\n",
        6,
        25,
        "unknown template helper `upper`",
    );
}

#[test]
fn partials_refused() {
    case(
        "partial",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{> evil}}\" }\n",
        6,
        23,
        "partials are not supported",
    );
}

#[test]
fn unknown_run_field() {
    case(
        "run field",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{run.user}}\" }\n",
        6,
        25,
        "unknown field `run.user`",
    );
}

#[test]
fn unknown_template_root() {
    case(
        "root",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{parms.x}}\" }\n",
        6,
        25,
        "unknown template variable `parms`",
    );
}

#[test]
fn concurrency_without_for_each() {
    case(
        "concurrency",
        "steps:\n  - id: a\n    action: core.log\n    concurrency: 4\n    with: { message: x }\n",
        6,
        18,
        "only applies to a step with `for_each`",
    );
}

#[test]
fn for_each_plain_string() {
    case(
        "for_each string",
        "steps:\n  - id: a\n    action: core.log\n    for_each: i-1\n    with: { message: x }\n",
        6,
        15,
        "`for_each` must be a template or a list",
    );
}

#[test]
fn retry_attempts_zero() {
    case(
        "retry",
        "steps:\n  - id: a\n    action: core.log\n    retry: { attempts: 0 }\n    with: { message: x }\n",
        6,
        24,
        "must be at least 1",
    );
}

#[test]
fn on_failure_misspelt() {
    case(
        "on_failure",
        "steps:\n  - id: a\n    action: core.log\n    on_failure: continu\n    with: { message: x }\n",
        6,
        17,
        "must be one of `abort`, `continue`",
    );
}

#[test]
fn step_id_with_dots() {
    case(
        "id",
        "steps:\n  - id: a.b\n    action: core.log\n    with: { message: x }\n",
        4,
        9,
        "step id `a.b` must start with a letter",
    );
}

#[test]
fn document_not_a_mapping() {
    case(
        "not a map",
        "!- just\n- a list\n",
        1,
        1,
        "a runbook must be a mapping",
    );
}

#[test]
fn alias_bomb_is_bounded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        text += &format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", "));
    }
    let diagnostics = from_str(&text).unwrap_err();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(
        diagnostics[0].message.contains("invalid YAML"),
        "{diagnostics:?}"
    );
    assert!(diagnostics[0].pos.line > 1, "{diagnostics:?}");
}

#[test]
fn all_errors_in_one_pass() {
    let text = format!(
        "{HEAD}colour: red\nsteps:\n  - id: a\n    action: core.aprove\n    timeout: soon\n  - id: a\n    action: core.log\n    with: {{ message: \"{{{{params.nope}}}}\" }}\n"
    );
    let diagnostics = from_str(&text).unwrap_err();
    let lines: Vec<u32> = diagnostics.iter().map(|d| d.pos.line).collect();
    assert_eq!(lines, [3, 6, 7, 8, 10], "{diagnostics:?}");
}

#[test]
fn shipped_runbooks_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(d) = from_str(&text) {
                panic!("{}: {d:?}", path.display());
            }
            count += 1;
        }
    }
    assert!(count > 0, "no runbooks found in {dir}");
}

const TRIGGERED: &str = "parameters:\n  instance_id: { type: string }\nsteps:\n  - { id: a, action: core.log, with: { message: hi } }\ntriggers:\n";

#[test]
fn trigger_pattern_value_not_a_list() {
    case(
        "trigger pattern",
        &format!(
            "{TRIGGERED}  - name: gd\n    pattern: {{ source: aws.guardduty }}\n    parameters: {{ instance_id: \"{{{{event.detail.id}}}}\" }}\n"
        ),
        9,
        24,
        "pattern values must be lists",
    );
}

#[test]
fn trigger_unknown_filter() {
    case(
        "trigger filter",
        &format!(
            "{TRIGGERED}  - name: gd\n    pattern:\n      detail:\n        type: [{{ prefx: \"UnauthorizedAccess:\" }}]\n      source: [aws.guardduty]\n    parameters: {{ instance_id: \"{{{{event.detail.id}}}}\" }}\n"
        ),
        11,
        18,
        "unknown pattern filter `prefx`",
    );
}

/// M6: a step that reads the event acts on a value no pattern checked and no lock covers.
#[test]
fn steps_cannot_read_the_event() {
    case(
        "event in a step",
        "steps:\n  - id: a\n    action: core.log\n    with: { message: \"{{event.detail.title}}\" }\n",
        6,
        25,
        "steps cannot read the event directly (`event.detail.title`)",
    );
}

const SECURITY_HUB: &str = "  - name: sh\n    pattern:\n      source: [aws.securityhub]\n      detail-type: [\"Security Hub Findings - Imported\"]\n";
const SET_ID: &str = "    parameters: { instance_id: \"{{event.detail.id}}\" }\n";

/// H9: a Security Hub trigger that does not name its products fires on posture findings.
#[test]
fn security_hub_trigger_without_product_arn() {
    case(
        "security hub, any product",
        &format!("{TRIGGERED}{SECURITY_HUB}{SET_ID}"),
        10,
        7,
        "must name the products it trusts",
    );
}

#[test]
fn security_hub_trigger_by_product_name() {
    case(
        "security hub, product name",
        &format!(
            "{TRIGGERED}{SECURITY_HUB}      detail: {{ findings: {{ ProductName: [GuardDuty], ProductArn: [{{ suffix: \"::product/aws/guardduty\" }}] }} }}\n{SET_ID}"
        ),
        12,
        29,
        "`ProductName` does not identify who wrote a finding",
    );
}

#[test]
fn security_hub_trigger_by_product_arn_prefix() {
    case(
        "security hub, arn prefix",
        &format!(
            "{TRIGGERED}{SECURITY_HUB}      detail: {{ findings: {{ ProductArn: [{{ prefix: \"arn:aws:securityhub\" }}] }} }}\n{SET_ID}"
        ),
        12,
        42,
        "`ProductArn` must name products exactly",
    );
}

#[test]
fn trigger_without_a_source() {
    case(
        "no source",
        &format!(
            "{TRIGGERED}  - name: any\n    pattern:\n      detail-type: [\"GuardDuty Finding\"]\n{SET_ID}"
        ),
        10,
        7,
        "must name its event `source`",
    );
}

#[test]
fn security_hub_trigger_naming_guardduty_is_valid() {
    let text = format!(
        "{HEAD}{TRIGGERED}{SECURITY_HUB}      detail: {{ findings: {{ ProductArn: [{{ suffix: \"::product/aws/guardduty\" }}, \"arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default\"] }} }}\n{SET_ID}"
    );
    if let Err(d) = from_str(&text) {
        panic!("{d:?}");
    }
}

#[test]
fn trigger_sets_unknown_parameter() {
    case(
        "trigger param",
        &format!(
            "{TRIGGERED}  - name: gd\n    pattern: {{ source: [aws.guardduty] }}\n    parameters: {{ instance_id: x, instance: y }}\n"
        ),
        10,
        35,
        "trigger sets unknown parameter `instance`",
    );
}

#[test]
fn trigger_parameters_read_only_the_event() {
    case(
        "trigger scope",
        &format!(
            "{TRIGGERED}  - name: gd\n    pattern: {{ source: [aws.guardduty] }}\n    parameters: {{ instance_id: \"{{{{params.instance_id}}}}\" }}\n"
        ),
        10,
        35,
        "trigger parameters can only use `event.*`",
    );
}

#[test]
fn trigger_misses_a_required_parameter() {
    case(
        "trigger required",
        &format!("{TRIGGERED}  - name: gd\n    pattern: {{ source: [aws.guardduty] }}\n"),
        8,
        11,
        "trigger does not set required parameter `instance_id`",
    );
}

#[test]
fn a_hard_target_cap_below_the_default_limit() {
    case(
        "hard cap",
        &format!("limits:\n  max_targets: 50\n  max_targets_hard: 20\n{LOG}"),
        5,
        21,
        "limits.max_targets_hard (20) is below limits.max_targets (50)",
    );
}

/// A group over `ids` whose inner steps are `inner` (indented for the group's `steps:`), then
/// a step `after` with message `after`.
fn grouped(inner: &str, after: &str) -> String {
    format!(
        "parameters:\n  ids: {{ type: list }}\nsteps:\n  - id: each\n    for_each: \"{{{{params.ids}}}}\"\n    steps:\n{inner}  - id: after\n    action: core.log\n    with: {{ message: \"{after}\" }}\n"
    )
}

const INNER_LOG: &str =
    "      - id: one\n        action: core.log\n        with: { message: \"{{item}}\" }\n";

#[test]
fn groups_are_accepted_with_item_and_earlier_inner_steps_and_read_after_as_a_list() {
    let inner = format!(
        "{INNER_LOG}      - id: two\n        action: core.log\n        when: \"{{{{steps.one.status}}}}\"\n        with: {{ message: \"{{{{steps.one.outputs.message}}}}\" }}\n"
    );
    let text = format!("{HEAD}{}", grouped(&inner, "{{len steps.each.outputs}}"));
    let loaded = from_str(&text).unwrap_or_else(|d| panic!("{d:?}"));
    let ids: Vec<String> = loaded
        .qualified_action_steps()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["each.one", "each.two", "after"]);
}

#[test]
fn a_group_needs_for_each() {
    case(
        "group without for_each",
        &format!("steps:\n  - id: each\n    steps:\n{INNER_LOG}"),
        4,
        5,
        "a group step (with `steps`) needs `for_each`",
    );
}

#[test]
fn a_group_has_no_action_of_its_own() {
    case(
        "group with action",
        &format!(
            "parameters:\n  ids: {{ type: list }}\nsteps:\n  - id: each\n    for_each: \"{{{{params.ids}}}}\"\n    action: core.log\n    steps:\n{INNER_LOG}"
        ),
        8,
        13,
        "a group step runs its inner `steps`; `action` belongs on them",
    );
}

#[test]
fn groups_do_not_nest() {
    let inner = "      - id: deeper\n        steps: []\n";
    case(
        "nested group",
        &grouped(inner, "x"),
        10,
        16,
        "groups cannot be nested",
    );
}

#[test]
fn an_inner_step_has_no_for_each_of_its_own() {
    let inner = "      - id: one\n        action: core.log\n        for_each: [a]\n        with: { message: hi }\n";
    case(
        "inner for_each",
        &grouped(inner, "x"),
        11,
        19,
        "an inner step runs once per item of its group; `for_each` belongs on the group",
    );
}

#[test]
fn no_decision_inside_a_group() {
    let inner = "      - id: ask\n        action: core.approve\n        with: { prompt: stop? }\n";
    case(
        "approve in group",
        &grouped(inner, "x"),
        10,
        17,
        "`core.approve` cannot run inside a group",
    );
}

#[test]
fn an_inner_step_is_read_after_its_group_only_through_the_group() {
    case(
        "inner read from outside",
        &grouped(INNER_LOG, "{{steps.one.outputs}}"),
        14,
        25,
        "step `one` runs inside group `each`, once per item: read it after the group as `steps.each.outputs`",
    );
}

#[test]
fn an_inner_step_cannot_read_its_own_group() {
    let inner = "      - id: one\n        action: core.log\n        with: { message: \"{{steps.each.outputs}}\" }\n";
    case(
        "group read from inside",
        &grouped(inner, "x"),
        11,
        29,
        "step `each` is the group this step runs in",
    );
}

#[test]
fn inner_ids_are_unique_across_the_runbook() {
    let inner = "      - id: after\n        action: core.log\n        with: { message: hi }\n";
    case(
        "inner id reused",
        &grouped(inner, "x"),
        12,
        9,
        "duplicate step id `after`",
    );
}

#[test]
fn a_step_needs_an_action_or_steps() {
    case(
        "no action",
        "steps:\n  - id: a\n    with: { message: hi }\n",
        4,
        5,
        "a step needs `action`",
    );
}

#[test]
fn an_approval_deadline_must_parse() {
    case(
        "approval timeout",
        "steps:\n  - id: a\n    action: core.approve\n    with:\n      prompt: ok\n      timeout: 3 days\n",
        8,
        16,
        "`timeout`:",
    );
}

#[test]
fn approvers_are_written_out_not_rendered() {
    case(
        "templated approver",
        "steps:\n  - id: a\n    action: core.approve\n    with:\n      prompt: ok\n      approvers: [\"{{event.detail.arn}}\"]\n",
        8,
        19,
        "`approvers` are written out, not templates",
    );
    case(
        "not an ARN",
        "steps:\n  - id: a\n    action: core.approve\n    with:\n      prompt: ok\n      approvers: [alice]\n",
        8,
        19,
        "`alice` is not an ARN pattern",
    );
}

const SECURITY_HUB_TRIGGER: &str = "triggers:\n  - name: hub\n    pattern:\n      source: [aws.securityhub]\n      detail-type: [\"Security Hub Findings - Imported\"]\n      detail:\n        findings:\n          ProductArn: [{ suffix: \"::product/aws/guardduty\" }]\n";

#[test]
fn a_finding_update_needs_a_pattern_on_new_findings_only() {
    case(
        "update without NEW",
        &format!("{SECURITY_HUB_TRIGGER}    update_finding: true\n{LOG}"),
        11,
        21,
        "must match `Workflow: { Status: [\"NEW\"] }` only",
    );
    case(
        "update with NEW and NOTIFIED",
        &format!(
            "{SECURITY_HUB_TRIGGER}          Workflow: {{ Status: [NEW, NOTIFIED] }}\n    update_finding: true\n{LOG}"
        ),
        11,
        31,
        "must match `Workflow: { Status: [\"NEW\"] }` only",
    );
}

#[test]
fn a_case_key_needs_recheck_steps_that_exist() {
    case(
        "case key without recheck",
        &format!("{SECURITY_HUB_TRIGGER}    case_key: \"{{{{event.id}}}}\"\n{LOG}"),
        11,
        15,
        "needs the runbook's `recheck` steps",
    );
    case(
        "recheck of an unknown step",
        &format!("recheck: [b]\n{LOG}"),
        3,
        11,
        "`recheck` names unknown step `b`",
    );
}

#[test]
fn a_custom_action_trigger_names_its_action_target() {
    case(
        "custom action by name",
        "triggers:\n  - name: act\n    pattern:\n      source: [aws.securityhub]\n      detail-type: [\"Security Hub Findings - Custom Action\"]\n      detail: { actionName: [Contain] }\nsteps:\n  - id: a\n    action: core.log\n    with: { message: hi }\n",
        7,
        7,
        "must name its action target in `resources`",
    );
}
