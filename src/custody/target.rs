//! Where a seal lives (`s3://BUCKET/PREFIX`) and how its objects are named: everything of a run
//! under `PREFIX/RUN_ID/`, the journal named by its head so no upload ever replaces another.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealTarget {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl SealTarget {
    /// Parses `s3://BUCKET[/PREFIX]`.
    pub fn parse(text: &str) -> Result<SealTarget, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("seal location {text:?} must look like s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid {
            return Err(format!(
                "seal location {text:?}: {bucket:?} is not an S3 bucket name (3-63 lowercase \
                 letters, digits, dots and hyphens)"
            ));
        }
        Ok(SealTarget {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    /// `s3://BUCKET/PREFIX/RUN_ID` → the seal and the run id (for `journal verify s3://…`).
    pub fn parse_run(text: &str) -> Result<(SealTarget, String), String> {
        let target = SealTarget::parse(text)?;
        let (prefix, run_id) = match target.prefix.rsplit_once('/') {
            Some((prefix, run_id)) => (prefix.to_owned(), run_id.to_owned()),
            None => (String::new(), target.prefix.clone()),
        };
        if run_id.is_empty() {
            return Err(format!(
                "{text:?} names no run: give s3://BUCKET/PREFIX/RUN_ID"
            ));
        }
        Ok((
            SealTarget {
                bucket: target.bucket,
                prefix,
            },
            run_id,
        ))
    }

    /// `PREFIX/RUN_ID/` — every object of the run starts with it.
    pub fn run_prefix(&self, run_id: &str) -> String {
        if self.prefix.is_empty() {
            format!("{run_id}/")
        } else {
            format!("{}/{run_id}/", self.prefix)
        }
    }

    /// `PREFIX/RUN_ID/journal.<seq>-<head>.jsonl`
    pub fn journal_key(&self, run_id: &str, records: u64, head: &str) -> String {
        format!("{}journal.{records}-{head}.jsonl", self.run_prefix(run_id))
    }

    /// `PREFIX/RUN_ID/statement.<seq>-<head>.json`
    pub fn statement_key(&self, run_id: &str, records: u64, head: &str) -> String {
        format!("{}statement.{records}-{head}.json", self.run_prefix(run_id))
    }

    /// `PREFIX/RUN_ID/evidence/<file name>` (evidence file names are unique within a run).
    pub fn evidence_key(&self, run_id: &str, file_name: &str) -> String {
        format!("{}evidence/{file_name}", self.run_prefix(run_id))
    }

    /// `PREFIX/RUN_ID/collected/<step>/<instance>/<artifact>`: uploaded by an instance.
    pub fn collected_key(&self, run_id: &str, step: &str, instance: &str, name: &str) -> String {
        format!(
            "{}collected/{step}/{instance}/{name}",
            self.run_prefix(run_id)
        )
    }
}

impl fmt::Display for SealTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The record count and head a journal object's key names (`journal.<seq>-<head>.jsonl`).
pub fn journal_key_parts(key: &str) -> Option<(u64, String)> {
    let name = key.rsplit('/').next()?;
    let middle = name.strip_prefix("journal.")?.strip_suffix(".jsonl")?;
    let (seq, head) = middle.split_once('-')?;
    Some((seq.parse().ok()?, head.to_owned()))
}

/// The same for a statement's key.
pub fn statement_key_parts(key: &str) -> Option<(u64, String)> {
    let name = key.rsplit('/').next()?;
    let middle = name.strip_prefix("statement.")?.strip_suffix(".json")?;
    let (seq, head) = middle.split_once('-')?;
    Some((seq.parse().ok()?, head.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations_and_names_keys() {
        let target = SealTarget::parse("s3://evidence-123/cases/").unwrap();
        assert_eq!(target.bucket, "evidence-123");
        assert_eq!(target.prefix, "cases");
        assert_eq!(target.to_string(), "s3://evidence-123/cases");
        let key = target.journal_key("R1", 42, "ab12");
        assert_eq!(key, "cases/R1/journal.42-ab12.jsonl");
        assert_eq!(journal_key_parts(&key), Some((42, "ab12".into())));
        assert_eq!(
            statement_key_parts(&target.statement_key("R1", 7, "ff")),
            Some((7, "ff".into()))
        );
        let bare = SealTarget::parse("s3://evidence-123").unwrap();
        assert_eq!(bare.evidence_key("R1", "a.json"), "R1/evidence/a.json");
        let (seal, run) = SealTarget::parse_run("s3://evidence-123/cases/R1").unwrap();
        assert_eq!((seal.prefix.as_str(), run.as_str()), ("cases", "R1"));
    }

    #[test]
    fn rejects_what_is_not_a_bucket() {
        for bad in ["evidence", "s3://", "s3://Ab", "s3://x", "s3://-abc/p"] {
            assert!(SealTarget::parse(bad).is_err(), "{bad}");
        }
        assert!(SealTarget::parse_run("s3://evidence-123").is_err());
    }
}
