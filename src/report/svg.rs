//! The timeline picture: one row per step, a bar from its start to its end on a shared time
//! axis, its AWS calls as ticks (red when they failed), approvals as diamonds, failed steps in
//! red — so a reviewer sees at a glance where the minutes went.

use std::fmt::Write as _;

use super::escape::escape;
use super::model::Report;

const LABEL: f64 = 170.0;
const WIDTH: f64 = 900.0;
const ROW: f64 = 26.0;
const TOP: f64 = 30.0;

pub fn timeline(report: &Report) -> String {
    let total = report.total_ms.max(1) as f64;
    let height = TOP + ROW * report.steps.len() as f64 + 20.0;
    let x = |ms: i64| LABEL + (ms.max(0) as f64 / total) * (WIDTH - LABEL - 10.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline of run {}\">",
        escape(&report.run_id)
    );
    let _ = writeln!(
        svg,
        "<title>Timeline of run {} ({} ms)</title>",
        escape(&report.run_id),
        report.total_ms
    );
    // Axis with five ticks.
    let _ = writeln!(
        svg,
        "<line x1=\"{LABEL}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#57606a\" />",
        TOP - 8.0,
        WIDTH - 10.0,
        TOP - 8.0
    );
    for i in 0..=4 {
        let ms = report.total_ms * i / 4;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            x(ms),
            TOP - 14.0,
            format_ms(ms)
        );
    }
    for (row, step) in report.steps.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let color = match step.status.as_str() {
            "succeeded" => "#2da44e",
            "failed" => "#cf222e",
            "skipped" => "#8c959f",
            _ => "#bf8700",
        };
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"12\" fill=\"#1b1f24\">{}</text>",
            y + 15.0,
            escape(&step.id)
        );
        if let Some(start) = step.start_ms {
            let end = step.end_ms.unwrap_or(report.total_ms);
            let width = (x(end) - x(start)).max(2.0);
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"14\" rx=\"2\" fill=\"{color}\" opacity=\"0.85\"><title>{} {} ({})</title></rect>",
                x(start),
                y + 4.0,
                escape(&step.id),
                escape(&step.status),
                step.duration_ms()
                    .map(format_ms)
                    .unwrap_or_else(|| "no end".into())
            );
        }
        for call in &step.calls {
            let tick = if call.outcome == "error" {
                "#cf222e"
            } else {
                "#0969da"
            };
            let _ = writeln!(
                svg,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{tick}\" stroke-width=\"1.5\"><title>{3}:{4} {5}</title></line>",
                x(call.at_ms),
                y + 1.0,
                y + 21.0,
                escape(&call.service),
                escape(&call.operation),
                escape(&call.outcome)
            );
        }
        for approval in &step.approvals {
            let cx = x(approval.at_ms);
            let cy = y + 11.0;
            let fill = if approval.approved {
                "#8250df"
            } else {
                "#cf222e"
            };
            let _ = writeln!(
                svg,
                "<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{fill}\"><title>approval: {}</title></polygon>",
                cx,
                cy - 7.0,
                cx + 7.0,
                cy,
                cx,
                cy + 7.0,
                cx - 7.0,
                cy,
                escape(&approval.by)
            );
        }
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

fn format_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{:.1} min", ms as f64 / 60_000.0)
    }
}
