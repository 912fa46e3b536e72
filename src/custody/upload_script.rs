//! The shell the instance runs to upload its artifacts: `firebreak_upload NAME FILE` hashes
//! the file, sends it to its presigned URL (one PUT, or part after part of a multipart upload,
//! each part cut from the file into a sibling file, sent and removed: the disk holds at most
//! one part more than the artifact), prints `firebreak-upload NAME SHA256 SIZE [UPLOAD_ID]`,
//! and removes the file whatever happened.

use super::presign::Upload;

/// The first and last lines of the functions, so the agent's stand-in in the tests (and a
/// reader of the command) can find them.
pub const BEGIN: &str = "# firebreak: upload functions (presigned URLs: never print this command)";
pub const END: &str = "# firebreak: end of upload functions";

/// A shell-safe single-quoted word.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The lines put before the command body on the instance.
pub fn preamble(uploads: &[Upload]) -> Vec<String> {
    let mut lines: Vec<String> = [
        BEGIN,
        // An Object Lock bucket refuses a PUT without Content-MD5 (or an SDK checksum header,
        // which a presigned URL cannot carry); S3 also refuses bytes that do not match it.
        "firebreak_md5() {",
        "  m=\"$(openssl dgst -md5 -binary \"$1\" 2>/dev/null | base64 2>/dev/null)\" || m=''",
        "  [ -n \"$m\" ] || m=\"$(python3 -c 'import base64,hashlib,sys;h=hashlib.md5();f=open(sys.argv[1],\"rb\");[h.update(b) for b in iter(lambda:f.read(1<<20),b\"\")];print(base64.b64encode(h.digest()).decode())' \"$1\")\"",
        "  echo \"$m\"",
        "}",
        "firebreak_upload() {",
        "  name=\"$1\"; file=\"$2\"; url=''; upload=''; part_mib=0; sigs=''; set --",
        "  case \"$name\" in",
    ]
    .map(str::to_owned)
    .into();
    for upload in uploads {
        let mut case = format!("    {}) url={};", quoted(&upload.name), quoted(&upload.url));
        if let Some(parts) = &upload.parts {
            case.push_str(&format!(
                " upload={}; part_mib={}; sigs={};",
                quoted(&parts.upload_id),
                parts.part_mib,
                quoted(&parts.signatures.join(" "))
            ));
        }
        case.push_str(" set --");
        for (name, value) in &upload.headers {
            case.push_str(&format!(" -H {}", quoted(&format!("{name}: {value}"))));
        }
        lines.push(format!("{case} ;;"));
    }
    lines.extend(
        [
            "    *) echo \"firebreak_upload: no upload named $name\" >&2; rm -f \"$file\"; return 2 ;;",
            "  esac",
            "  sum=\"$(sha256sum \"$file\" | cut -d' ' -f1)\"; size=\"$(stat -c %s \"$file\")\"; status=0",
            "  if [ \"$part_mib\" -eq 0 ]; then",
            "    curl -fsS --retry 3 -X PUT \"$@\" -H \"Content-MD5: $(firebreak_md5 \"$file\")\" --upload-file \"$file\" \"$url\" || status=$?",
            "  else",
            "    n=0; part_bytes=$((part_mib * 1048576)); part=\"$file.part\"",
            "    for sig in $sigs; do",
            "      [ \"$n\" -eq 0 ] || [ $((n * part_bytes)) -lt \"$size\" ] || break",
            "      n=$((n + 1))",
            "      dd if=\"$file\" of=\"$part\" bs=1048576 skip=$(((n - 1) * part_mib)) count=\"$part_mib\" 2>/dev/null || status=$?",
            "      [ \"$status\" -ne 0 ] || curl -fsS --retry 3 -X PUT \"$@\" -H \"Content-MD5: $(firebreak_md5 \"$part\")\" --upload-file \"$part\" \"$url&partNumber=$n&X-Amz-Signature=$sig\" || status=$?",
            "      rm -f \"$part\"",
            "      [ \"$status\" -eq 0 ] || break",
            "    done",
            "    if [ \"$status\" -eq 0 ] && [ $((n * part_bytes)) -lt \"$size\" ]; then",
            "      echo \"firebreak_upload: $name ($size bytes) is larger than its $n presigned parts of $part_mib MiB\" >&2; status=3",
            "    fi",
            "  fi",
            "  rm -f \"$file\"",
            "  [ \"$status\" -ne 0 ] || echo \"firebreak-upload $name $sum $size $upload\"",
            "  return \"$status\"",
            "}",
            END,
        ]
        .map(str::to_owned),
    );
    lines
}

/// What the instance says it sent (a root attacker can make it say anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    /// The multipart upload the parts went to.
    pub upload_id: Option<String>,
}

/// `firebreak-upload NAME SHA256 SIZE [UPLOAD_ID]` lines from a command's output.
pub fn reported(stdout: &str) -> Vec<Reported> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("firebreak-upload ")?.split_whitespace();
            Some(Reported {
                name: words.next()?.to_owned(),
                sha256: words.next()?.to_owned(),
                size: words.next()?.parse().ok()?,
                upload_id: words.next().map(str::to_owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custody::presign::Parts;

    #[test]
    fn the_preamble_quotes_urls_and_headers_and_reports_parse() {
        let upload = Upload {
            name: "volatile.tar.gz".into(),
            key: "k".into(),
            url: "https://b.s3.amazonaws.com/k?X-Amz-Signature=ab'cd".into(),
            headers: vec![("if-none-match".into(), "*".into())],
            parts: None,
        };
        let text = preamble(&[upload]).join("\n");
        assert!(text.contains(r"url='https://b.s3.amazonaws.com/k?X-Amz-Signature=ab'\''cd'"));
        assert!(text.contains("-H 'if-none-match: *'"), "{text}");
        assert_eq!(
            reported(
                "noise\nfirebreak-upload volatile.tar.gz abc 42\nfirebreak-upload m.lime d 7 u-1\n"
            ),
            vec![
                Reported {
                    name: "volatile.tar.gz".into(),
                    sha256: "abc".into(),
                    size: 42,
                    upload_id: None
                },
                Reported {
                    name: "m.lime".into(),
                    sha256: "d".into(),
                    size: 7,
                    upload_id: Some("u-1".into())
                },
            ]
        );
    }

    #[test]
    fn a_multipart_entry_carries_its_upload_part_size_and_signatures() {
        let upload = Upload {
            name: "memory.lime".into(),
            key: "k".into(),
            url: "https://b/k?uploadId=u1".into(),
            headers: vec![("x-amz-expected-bucket-owner".into(), "123456789012".into())],
            parts: Some(Parts {
                upload_id: "u1".into(),
                part_mib: 64,
                signatures: vec!["aa".into(), "bb".into()],
            }),
        };
        let text = preamble(&[upload]).join("\n");
        assert!(
            text.contains("'memory.lime') url='https://b/k?uploadId=u1'; upload='u1'; part_mib=64; sigs='aa bb'; set -- -H 'x-amz-expected-bucket-owner: 123456789012' ;;"),
            "{text}"
        );
        assert!(text.starts_with(BEGIN) && text.ends_with(END));
    }
}
