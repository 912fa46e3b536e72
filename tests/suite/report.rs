//! Case reports from journals of a live, a failed and a dry run: Markdown and HTML render, the
//! HTML is well-formed and contains every step and every API call of the journal.

use std::path::Path;

use crate::support::{firebreak, moto, sandbox};

fn run(dir: &Path, args: &[&str]) -> String {
    let (_, outcome, stderr) = crate::support::cli_on_moto(dir, args);
    outcome["journal"]
        .as_str()
        .unwrap_or_else(|| panic!("{args:?}: {stderr}"))
        .to_owned()
}

/// Tags must nest and close (void elements aside); attribute quotes must balance.
fn assert_well_formed(html: &str) {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map(|e| start + e)
            .expect("every tag closes");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if tag.starts_with('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else if !self_closing && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn check(journal: &str) {
    let markdown = firebreak().args(["report", journal]).output().unwrap();
    assert_eq!(markdown.status.code(), Some(0));
    let markdown = String::from_utf8(markdown.stdout).unwrap();
    assert!(markdown.starts_with("# Case report: run `"), "{markdown}");
    assert!(
        markdown.contains("**Journal verification:** ✅ ok:"),
        "{markdown}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    let out = firebreak()
        .args(["report", journal, "--format", "html", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert_well_formed(&html);
    assert!(
        html.contains("<svg") && html.contains("</svg>"),
        "the timeline is drawn inline"
    );
    assert!(
        !html.contains("http://")
            || html
                .matches("http://")
                .all(|_| html.contains("xmlns=\"http://www.w3.org/2000/svg\""))
    );
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "self-contained: no scripts, no external assets"
    );
    for record in crate::support::journal::values(Path::new(journal)) {
        match record["type"].as_str().unwrap() {
            "step_started" | "step_skipped" => {
                let step = record["step"].as_str().unwrap();
                assert!(
                    html.contains(&format!("id=\"step-{step}\"")),
                    "step {step} missing"
                );
                assert!(
                    markdown.contains(&format!("### {step} ")),
                    "step {step} missing from markdown"
                );
            }
            "api_call" => {
                let call = format!(
                    "{}:{}",
                    record["service"].as_str().unwrap(),
                    record["operation"].as_str().unwrap()
                );
                assert!(html.contains(&call), "{call} missing");
                if let Some(request_id) = record["request_id"].as_str() {
                    assert!(
                        html.contains(request_id),
                        "request id {request_id} of {call} missing"
                    );
                    assert!(
                        markdown.contains(request_id),
                        "request id {request_id} missing from markdown"
                    );
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn reports_for_a_live_a_failed_and_a_dry_run() {
    let _moto = moto::exclusive().await;
    let ids = sandbox::seed("web-1");
    let instance = format!("instance_id={}", ids["instance_id"].as_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let live = run(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-instance-compromise.yaml",
            "--yes",
            "-p",
            &instance,
        ],
    );
    check(&live);
    let failed = run(dir.path(), &["run", "tests/fixtures/engine/failures.yaml"]);
    check(&failed);
    let failed_md = String::from_utf8(
        firebreak()
            .args(["report", &failed])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        failed_md.contains("## Failures") && failed_md.contains("steps.first.outputs.missing"),
        "{failed_md}"
    );
    let drill = run(
        dir.path(),
        &[
            "run",
            "runbooks/ec2-instance-compromise.yaml",
            "--dry-run",
            "-p",
            &instance,
        ],
    );
    check(&drill);

    // Evidence re-checked: tamper with the console output and the report says so.
    let records = crate::support::journal::values(Path::new(&live));
    let artifact = records.iter().find(|r| r["type"] == "evidence").unwrap()["artifact"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(&artifact, b"tampered").unwrap();
    let md =
        String::from_utf8(firebreak().args(["report", &live]).output().unwrap().stdout).unwrap();
    assert!(md.contains("❌ size is 8 bytes"), "{md}");
}
