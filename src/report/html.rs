//! The case report as one self-contained HTML file: no external assets, readable on a phone,
//! printable, with the run drawn as an inline SVG timeline (a bar per step on a time axis,
//! its API calls as ticks, failures and approvals marked).

use std::fmt::Write as _;

use super::escape::escape;
use super::model::Report;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:70rem;padding:1rem;color:#1b1f24;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f6f8fa}.scroll{overflow-x:auto}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
.ok{color:#1a7f37}.bad{color:#cf222e}.banner{padding:.6rem 1rem;border-radius:.4rem;font-weight:600}
.banner.ok{background:#dafbe1}.banner.bad{background:#ffebe9}
svg{width:100%;height:auto;background:#fff}
@media print{body{max-width:none}.scroll{overflow:visible}h2{break-after:avoid}section{break-inside:avoid}}
";

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n<title>firebreak case report {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&report.run_id)
    );
    let _ = writeln!(
        w,
        "<h1>Case report: run <code>{}</code></h1>",
        escape(&report.run_id)
    );
    let class = if report.intact { "ok" } else { "bad" };
    let _ = writeln!(
        w,
        "<p class=\"banner {class}\">Journal verification: {}</p>",
        escape(&report.verification)
    );

    let _ = writeln!(w, "<section><h2>Summary</h2><div class=\"scroll\"><table>");
    let rows = [
        (
            "Runbook",
            format!(
                "<code>{}</code> ({})",
                escape(&report.runbook_name),
                escape(&report.runbook_path)
            ),
        ),
        (
            "Runbook SHA-256",
            format!("<code>{}</code>", escape(&report.runbook_sha256)),
        ),
        (
            "Status",
            format!("<strong>{}</strong>", escape(&report.status)),
        ),
        ("Mode", escape(&report.mode)),
        (
            "Run by",
            format!(
                "{} (user {} on {})",
                escape(&report.caller),
                escape(&report.user),
                escape(&report.host)
            ),
        ),
        ("Started", escape(&report.started)),
        (
            "Finished",
            escape(report.finished.as_deref().unwrap_or("— (not finished)")),
        ),
        (
            "Journal",
            format!("<code>{}</code>", escape(&report.journal)),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(w, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    let _ = writeln!(w, "</table></div></section>");

    let _ = writeln!(
        w,
        "<section><h2>Parameters</h2><div class=\"scroll\"><table><tr><th>name</th><th>value</th></tr>"
    );
    for (name, value) in &report.parameters {
        let _ = writeln!(
            w,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            escape(name),
            escape(value)
        );
    }
    let _ = writeln!(w, "</table></div></section>");

    let _ = writeln!(
        w,
        "<section><h2>Timeline</h2>\n{}</section>",
        super::svg::timeline(report)
    );

    if let Some(summary) = report.isolation_summary() {
        let _ = writeln!(
            w,
            "<section><h2>Time to isolation</h2><p>{}.</p><div class=\"scroll\"><table><tr><th>target</th><th>step</th><th>after run start</th><th>after finding</th></tr>",
            escape(&summary)
        );
        for isolation in &report.isolations {
            let finding = isolation.after_finding();
            let _ = writeln!(
                w,
                "<tr><td>{}</td><td>{}</td><td>{} ms</td><td>{finding}</td></tr>",
                escape(&isolation.target),
                escape(&isolation.step),
                isolation.after_run_start_ms
            );
        }
        let _ = writeln!(w, "</table></div></section>");
    }

    let failures: Vec<_> = report.steps.iter().filter(|s| s.error.is_some()).collect();
    if !failures.is_empty() {
        let _ = writeln!(w, "<section><h2>Failures</h2><ul>");
        for step in failures {
            let _ = writeln!(
                w,
                "<li class=\"bad\"><strong>{}</strong>: {}</li>",
                escape(&step.id),
                escape(step.error.as_deref().unwrap_or_default())
            );
        }
        let _ = writeln!(w, "</ul></section>");
    }

    let _ = writeln!(w, "<section><h2>Steps and AWS calls</h2>");
    for step in &report.steps {
        let duration = step
            .duration_ms()
            .map(|d| format!(", {d} ms"))
            .unwrap_or_default();
        let _ = writeln!(
            w,
            "<h3 id=\"step-{}\">{} — <code>{}</code> ({}{duration})</h3>",
            escape(&step.id),
            escape(&step.id),
            escape(&step.action),
            escape(&step.status)
        );
        if let Some(condition) = &step.condition {
            let _ = writeln!(w, "<p>Skipped: <code>when</code> {}</p>", escape(condition));
        }
        for approval in &step.approvals {
            let verdict = if approval.approved {
                "approved"
            } else {
                "denied"
            };
            let _ = writeln!(
                w,
                "<p>Approval “{}”: <strong>{verdict}</strong> by {}</p>",
                escape(&approval.prompt),
                escape(&approval.by)
            );
        }
        if !step.calls.is_empty() {
            let _ = writeln!(
                w,
                "<div class=\"scroll\"><table><tr><th>time</th><th>call</th><th>outcome</th><th>ms</th><th>attempt</th><th>request id</th><th>targets</th></tr>"
            );
            for call in &step.calls {
                let outcome = match &call.code {
                    Some(code) => format!("{} ({code})", call.outcome),
                    None => call.outcome.clone(),
                };
                let class = if call.outcome == "error" {
                    " class=\"bad\""
                } else {
                    ""
                };
                let _ = writeln!(
                    w,
                    "<tr{class}><td>{}</td><td>{}:{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    escape(call.ts.get(11..23).unwrap_or(&call.ts)),
                    escape(&call.service),
                    escape(&call.operation),
                    escape(&outcome),
                    call.duration_ms,
                    call.attempt,
                    escape(call.request_id.as_deref().unwrap_or("—")),
                    escape(&call.targets.join(", "))
                );
            }
            let _ = writeln!(w, "</table></div>");
        }
        if let Some(outputs) = &step.outputs {
            let _ = writeln!(
                w,
                "<p>State and prior state (outputs):</p><pre>{}</pre>",
                escape(&serde_json::to_string_pretty(outputs).unwrap_or_default())
            );
        }
    }
    let _ = writeln!(w, "</section>");

    let _ = writeln!(w, "<section><h2>Evidence</h2>");
    if report.evidence.is_empty() {
        let _ = writeln!(w, "<p>No evidence files were written by this run.</p>");
    } else {
        let _ = writeln!(
            w,
            "<div class=\"scroll\"><table><tr><th>step</th><th>file</th><th>bytes</th><th>SHA-256</th><th>re-checked</th></tr>"
        );
        for artifact in &report.evidence {
            let check = match &artifact.problem {
                Some(problem) => format!("<span class=\"bad\">{}</span>", escape(problem)),
                None => "<span class=\"ok\">matches</span>".into(),
            };
            let _ = writeln!(
                w,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{check}</td></tr>",
                escape(&artifact.step),
                escape(&artifact.path),
                artifact.size,
                escape(&artifact.sha256)
            );
        }
        let _ = writeln!(w, "</table></div>");
    }
    let _ = writeln!(w, "</section>");
    custody(w, &report.custody);
    if !report.events.is_empty() {
        let _ = writeln!(w, "<section><h2>Other events</h2><ul>");
        for (ts, what) in &report.events {
            let _ = writeln!(w, "<li>{}: {}</li>", escape(ts), escape(what));
        }
        let _ = writeln!(w, "</ul></section>");
    }
    let _ = writeln!(w, "</body>\n</html>");
    out
}

/// The chain of custody: where the run was sealed, what, and what failed.
fn custody(w: &mut String, custody: &super::custody::Custody) {
    let Some(location) = &custody.location else {
        return;
    };
    let _ = writeln!(
        w,
        "<section><h2>Chain of custody</h2><p>Sealed to <code>{}</code> (S3 Object Lock).</p>",
        escape(location)
    );
    if !custody.objects.is_empty() {
        let _ = writeln!(
            w,
            "<div class=\"scroll\"><table><tr><th>sealed</th><th>object</th><th>version</th><th>retention</th></tr>"
        );
        for object in &custody.objects {
            let _ = writeln!(
                w,
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&object.what),
                escape(&object.key),
                escape(&object.version_id),
                escape(&object.retention)
            );
        }
        let _ = writeln!(w, "</table></div>");
    }
    let _ = writeln!(w, "<ul>");
    for statement in &custody.statements {
        let _ = writeln!(w, "<li>Signed: {}</li>", escape(statement));
    }
    for (ts, what, error) in &custody.failures {
        let _ = writeln!(
            w,
            "<li><span class=\"bad\">{}: sealing the {} failed: {}</span></li>",
            escape(ts),
            escape(what),
            escape(error)
        );
    }
    let _ = writeln!(w, "</ul></section>");
}
