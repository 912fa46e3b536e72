//! The case report as Markdown, to paste into a ticket.

use std::fmt::Write as _;

use super::model::Report;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Case report: run `{}`\n", report.run_id);
    let mark = if report.intact { "✅" } else { "❌" };
    let _ = writeln!(
        w,
        "**Journal verification:** {mark} {}\n",
        report.verification
    );
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(
        w,
        "| Runbook | `{}` ({}) |",
        report.runbook_name,
        cell(&report.runbook_path)
    );
    let _ = writeln!(w, "| Runbook SHA-256 | `{}` |", report.runbook_sha256);
    let _ = writeln!(w, "| Status | **{}** |", report.status);
    let _ = writeln!(w, "| Mode | {} |", report.mode);
    let _ = writeln!(
        w,
        "| Run by | {} (user {} on {}) |",
        cell(&report.caller),
        report.user,
        report.host
    );
    let _ = writeln!(w, "| Started | {} |", report.started);
    let _ = writeln!(
        w,
        "| Finished | {} |",
        report.finished.as_deref().unwrap_or("— (not finished)")
    );
    let _ = writeln!(w, "| Journal | `{}` |\n", cell(&report.journal));

    let _ = writeln!(w, "## Parameters\n\n| name | value |\n|---|---|");
    for (name, value) in &report.parameters {
        let _ = writeln!(w, "| {name} | `{}` |", cell(value));
    }

    let _ = writeln!(
        w,
        "\n## Steps\n\n| # | step | action | status | duration | calls |\n|---|---|---|---|---|---|"
    );
    for (i, step) in report.steps.iter().enumerate() {
        let duration = step
            .duration_ms()
            .map(|d| format!("{d} ms"))
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            w,
            "| {} | {} | `{}` | {} | {duration} | {} |",
            i + 1,
            step.id,
            step.action,
            step.status,
            step.calls.len()
        );
    }

    if let Some(summary) = report.isolation_summary() {
        let _ = writeln!(
            w,
            "\n## Time to isolation\n\n{summary}.\n\n| target | step | after run start | after finding |\n|---|---|---|---|"
        );
        for isolation in &report.isolations {
            let finding = isolation.after_finding();
            let _ = writeln!(
                w,
                "| {} | {} | {} ms | {finding} |",
                cell(&isolation.target),
                isolation.step,
                isolation.after_run_start_ms
            );
        }
    }

    let failures: Vec<_> = report.steps.iter().filter(|s| s.error.is_some()).collect();
    if !failures.is_empty() {
        let _ = writeln!(w, "\n## Failures\n");
        for step in failures {
            let _ = writeln!(
                w,
                "- **{}**: {}",
                step.id,
                cell(step.error.as_deref().unwrap_or_default())
            );
        }
    }

    let _ = writeln!(w, "\n## Timeline\n");
    for step in &report.steps {
        let _ = writeln!(w, "### {} — `{}` ({})\n", step.id, step.action, step.status);
        if let Some(condition) = &step.condition {
            let _ = writeln!(w, "Skipped: `when` {}\n", cell(condition));
        }
        for approval in &step.approvals {
            let verdict = if approval.approved {
                "approved"
            } else {
                "denied"
            };
            let _ = writeln!(
                w,
                "- Approval \"{}\": **{verdict}** by {}",
                cell(&approval.prompt),
                approval.by
            );
        }
        if !step.calls.is_empty() {
            let _ = writeln!(
                w,
                "| time | call | outcome | ms | attempt | request id | targets |\n|---|---|---|---|---|---|---|"
            );
            for call in &step.calls {
                let outcome = match &call.code {
                    Some(code) => format!("{} ({code})", call.outcome),
                    None => call.outcome.clone(),
                };
                let _ = writeln!(
                    w,
                    "| {} | {}:{} | {outcome} | {} | {} | `{}` | {} |",
                    call.ts.get(11..23).unwrap_or(&call.ts),
                    call.service,
                    call.operation,
                    call.duration_ms,
                    call.attempt,
                    call.request_id.as_deref().unwrap_or("—"),
                    cell(&call.targets.join(", "))
                );
            }
            let _ = writeln!(w);
        }
        if let Some(outputs) = &step.outputs {
            let _ = writeln!(
                w,
                "State and prior state (outputs):\n\n```json\n{}\n```\n",
                serde_json::to_string_pretty(outputs).unwrap_or_default()
            );
        }
    }

    let _ = writeln!(w, "## Evidence\n");
    if report.evidence.is_empty() {
        let _ = writeln!(w, "No evidence files were written by this run.");
    } else {
        let _ = writeln!(
            w,
            "| step | file | bytes | SHA-256 | re-checked |\n|---|---|---|---|---|"
        );
        for artifact in &report.evidence {
            let check = artifact
                .problem
                .as_deref()
                .map(|p| format!("❌ {p}"))
                .unwrap_or_else(|| "✅ matches".into());
            let _ = writeln!(
                w,
                "| {} | `{}` | {} | `{}` | {check} |",
                artifact.step,
                cell(&artifact.path),
                artifact.size,
                artifact.sha256
            );
        }
    }
    custody(w, &report.custody);
    if !report.events.is_empty() {
        let _ = writeln!(w, "\n## Other events\n");
        for (ts, what) in &report.events {
            let _ = writeln!(w, "- {ts}: {what}");
        }
    }
    out
}

/// The chain of custody: where the run was sealed, what, and what failed.
fn custody(w: &mut String, custody: &super::custody::Custody) {
    let Some(location) = &custody.location else {
        return;
    };
    let _ = writeln!(
        w,
        "\n## Chain of custody\n\nSealed to `{}` (S3 Object Lock).\n",
        cell(location)
    );
    if !custody.objects.is_empty() {
        let _ = writeln!(
            w,
            "| sealed | object | version | retention |\n|---|---|---|---|"
        );
        for object in &custody.objects {
            let _ = writeln!(
                w,
                "| {} | `{}` | `{}` | {} |",
                object.what,
                cell(&object.key),
                cell(&object.version_id),
                object.retention
            );
        }
    }
    for statement in &custody.statements {
        let _ = writeln!(
            w,
            "\n- Signed: {statement} (check it with `firebreak journal verify s3://… --kms`)"
        );
    }
    for (ts, what, error) in &custody.failures {
        let _ = writeln!(w, "\n- ❌ {ts}: sealing the {what} failed: {error}");
    }
}
