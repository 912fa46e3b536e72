//! `firebreak plan`: the runbook as a tabletop script.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Exit, OutputFormat, PlanArgs};
use crate::actions::RunUses;
use crate::plan::{self, Plan, PlannedStep};

pub fn run(args: &PlanArgs) -> Exit {
    let (loaded, event) = match super::load_inputs(&args.file, args.event.as_deref()) {
        Ok(inputs) => inputs,
        Err(exit) => return exit,
    };
    let uses = RunUses {
        drills: args.dry_run,
        assume_role: args.assume_role.is_some(),
        ..Default::default()
    };
    let plan = match plan::build(&loaded, &args.params, event.as_ref(), uses) {
        Ok(plan) => plan,
        Err(error) => {
            for line in error.to_string().lines() {
                eprintln!("error: {line}");
            }
            return Exit::Invalid;
        }
    };
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("a plan serializes")
        ),
        OutputFormat::Text => print!("{}", render_text(&plan)),
    }
    Exit::Ok
}

/// Numbered steps, decision points called out, like a tabletop script.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan: {}", plan.runbook);
    if let Some(description) = &plan.description {
        let _ = writeln!(out, "  {}", description.trim());
    }
    let _ = writeln!(
        out,
        "  runbook {} (sha256 {})",
        plan.path,
        &plan.sha256[..16]
    );
    let _ = writeln!(out, "\nParameters:");
    if plan.parameters.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    let width = plan.parameters.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in &plan.parameters {
        let _ = writeln!(out, "  {name:width$} = {}", inline(value));
    }
    let decisions = plan
        .steps
        .iter()
        .filter(|s| s.decision.is_some() || s.when.is_some())
        .count();
    let _ = writeln!(
        out,
        "\nSteps ({} steps, {} decision point{}):",
        plan.steps.len(),
        decisions,
        if decisions == 1 { "" } else { "s" }
    );
    for step in &plan.steps {
        render_step(&mut out, step);
    }
    let _ = writeln!(
        out,
        "\nThe engine's own calls: {}",
        plan.engine_calls.join(", ")
    );
    let _ = writeln!(out, "\nIAM permissions needed:");
    if plan.permissions.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for permission in &plan.permissions {
        let _ = writeln!(out, "  {permission}");
    }
    out
}

fn render_step(out: &mut String, step: &PlannedStep) {
    let marker = if step.decision.is_some() {
        "  DECISION"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "\n{:>3}. {} — {}{marker}",
        step.number, step.id, step.action
    );
    let _ = writeln!(
        out,
        "     {}",
        step.description.as_deref().unwrap_or(&step.summary)
    );
    if let Some(when) = &step.when {
        let _ = writeln!(
            out,
            "     only if: {}   (decision point: skipped otherwise)",
            inline(when)
        );
    }
    if let Some(prompt) = &step.decision {
        let _ = writeln!(
            out,
            "     asks the operator: \"{prompt}\" (denied without a terminal or --yes)"
        );
    }
    if let Some(group) = &step.within {
        let _ = writeln!(
            out,
            "     for each item of `{group}`, after its earlier steps"
        );
    }
    if let Some(items) = &step.for_each {
        let _ = writeln!(
            out,
            "     for each of: {}  (at most {} at once)",
            inline(items),
            step.concurrency.unwrap_or_default()
        );
    }
    if let Value::Object(input) = &step.input {
        for (key, value) in input {
            let _ = writeln!(out, "     with {key}: {}", inline(value));
        }
    }
    let mut limits = Vec::new();
    if let Some(timeout) = &step.timeout {
        limits.push(format!("timeout {timeout}"));
    }
    if step.attempts > 1 {
        limits.push(format!("up to {} attempts", step.attempts));
    }
    if step.on_failure == crate::runbook::OnFailure::Continue {
        limits.push("continues on failure".into());
    }
    if !limits.is_empty() {
        let _ = writeln!(out, "     {}", limits.join(", "));
    }
    if !step.calls.is_empty() {
        let _ = writeln!(out, "     calls: {}", step.calls.join(", "));
    }
    if !step.permissions.is_empty() {
        let _ = writeln!(out, "     needs: {}", step.permissions.join(", "));
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
