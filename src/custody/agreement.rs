//! Does a local journal agree with its seal? It does when the newest sealed copy is, byte for
//! byte, the start of the local file, and everything the local file has beyond it is custody
//! records (the upload of that very copy is journaled after it). A local file that was edited,
//! or lost records the seal holds, disagrees.

use crate::journal::custody::CUSTODY_KINDS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// The seal holds the local file up to `sealed` records; `after` custody records follow.
    Agrees {
        sealed: u64,
        after: usize,
    },
    Disagrees(String),
}

pub fn compare(local: &[u8], sealed: &[u8]) -> Agreement {
    let local_lines: Vec<&[u8]> = lines(local);
    let sealed_lines: Vec<&[u8]> = lines(sealed);
    for (index, sealed_line) in sealed_lines.iter().enumerate() {
        let seq = seq_of(sealed_line).unwrap_or(index as u64 + 1);
        match local_lines.get(index) {
            None => {
                return Agreement::Disagrees(format!(
                    "the local journal ends at record {}; the seal holds records up to {}: \
                     records were removed from the local file",
                    index,
                    sealed_lines.len()
                ));
            }
            Some(line) if line != sealed_line => {
                return Agreement::Disagrees(format!(
                    "record {seq} differs from the sealed copy: the local file was changed"
                ));
            }
            Some(_) => {}
        }
    }
    let extra = &local_lines[sealed_lines.len()..];
    for line in extra {
        let value: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
        let kind = value["type"].as_str().unwrap_or("");
        if !CUSTODY_KINDS.contains(&kind) {
            return Agreement::Disagrees(format!(
                "record {} ({kind}) is not in the seal: the seal is behind the local file (run \
                 `firebreak journal seal`), or the record was added afterwards",
                value["seq"]
            ));
        }
    }
    Agreement::Agrees {
        sealed: sealed_lines.len() as u64,
        after: extra.len(),
    }
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .collect()
}

fn seq_of(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(line).ok()?["seq"].as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "{\"seq\":1,\"type\":\"run_started\"}\n";
    const B: &str = "{\"seq\":2,\"type\":\"run_finished\"}\n";
    const S: &str = "{\"seq\":3,\"type\":\"sealed\"}\n";

    #[test]
    fn a_prefix_followed_by_custody_records_agrees() {
        let sealed = format!("{A}{B}");
        assert_eq!(
            compare(format!("{A}{B}{S}").as_bytes(), sealed.as_bytes()),
            Agreement::Agrees {
                sealed: 2,
                after: 1
            }
        );
    }

    #[test]
    fn edits_losses_and_additions_disagree() {
        let sealed = format!("{A}{B}");
        let edited = format!("{A}{}", B.replace("finished", "started"));
        let Agreement::Disagrees(why) = compare(edited.as_bytes(), sealed.as_bytes()) else {
            panic!("an edit agrees")
        };
        assert!(why.contains("record 2 differs"), "{why}");
        let Agreement::Disagrees(why) = compare(A.as_bytes(), sealed.as_bytes()) else {
            panic!("a loss agrees")
        };
        assert!(why.contains("removed"), "{why}");
        let added = format!("{A}{B}{}", "{\"seq\":3,\"type\":\"step_started\"}\n");
        assert!(matches!(
            compare(added.as_bytes(), sealed.as_bytes()),
            Agreement::Disagrees(_)
        ));
    }
}
