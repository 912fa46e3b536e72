//! Time to isolation: how long after the run started — and, for a run a finding started, after
//! the finding was last updated — an isolating action succeeded. In an outbreak the question is
//! how fast the *last* instance was cut off; these figures answer it per target.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::journal::event::Isolated;

/// Measured now, from the template context's `run.started_at` (the first start, when resumed)
/// and the event's finding.
pub fn since_start(context: &Value) -> Isolated {
    since(context, OffsetDateTime::now_utc())
}

fn since(context: &Value, now: OffsetDateTime) -> Isolated {
    let after = |at: Option<OffsetDateTime>| {
        at.map(|at| u64::try_from((now - at).whole_milliseconds()).unwrap_or(0))
    };
    Isolated {
        after_run_start_ms: after(parse(&context["run"]["started_at"])).unwrap_or(0),
        after_finding_ms: after(finding_updated_at(&context["event"])),
    }
}

/// When the finding was last updated: GuardDuty's `detail.updatedAt`, Security Hub's
/// `detail.findings[0].UpdatedAt`.
fn finding_updated_at(event: &Value) -> Option<OffsetDateTime> {
    let detail = &event["detail"];
    parse(&detail["updatedAt"]).or_else(|| parse(&detail["findings"][0]["UpdatedAt"]))
}

fn parse(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn measures_from_the_run_start_and_a_guardduty_finding() {
        let context = json!({
            "run": {"started_at": "2026-12-01T10:00:00.000Z"},
            "event": {"detail": {"updatedAt": "2026-12-01T09:59:30.500Z"}},
        });
        let isolated = since(&context, at("2026-12-01T10:00:04.250Z"));
        assert_eq!(isolated.after_run_start_ms, 4_250);
        assert_eq!(isolated.after_finding_ms, Some(33_750));
    }

    #[test]
    fn reads_a_security_hub_finding_and_no_finding_without_an_event() {
        let hub = json!({
            "run": {"started_at": "2026-12-01T10:00:00Z"},
            "event": {"detail": {"findings": [{"UpdatedAt": "2026-12-01T09:00:00Z"}]}},
        });
        let now = at("2026-12-01T10:00:01Z");
        assert_eq!(since(&hub, now).after_finding_ms, Some(3_601_000));
        let terminal = json!({"run": {"started_at": "2026-12-01T10:00:00Z"}, "event": null});
        assert_eq!(since(&terminal, now).after_finding_ms, None);
        assert_eq!(since(&terminal, now).after_run_start_ms, 1_000);
    }

    #[test]
    fn a_clock_behind_the_start_reads_zero_not_a_wrapped_number() {
        let context = json!({"run": {"started_at": "2026-12-01T10:00:05Z"}});
        assert_eq!(
            since(&context, at("2026-12-01T10:00:00Z")).after_run_start_ms,
            0
        );
    }
}
