//! Evidence uploaded straight from an instance to the seal: one short-lived presigned PUT URL
//! per artifact, so the instance's own role needs no S3 rights and can write nowhere else. The
//! URL carries its headers (`If-None-Match: *`, the expected owner): the instance must send
//! them, so it cannot overwrite an artifact or write to a bucket another account took over.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

use super::store::Store;
use super::target::SealTarget;

/// Where an instance's uploads go: the run's seal.
#[derive(Clone, Debug)]
pub struct Collection {
    pub store: Store,
    pub target: SealTarget,
}

/// One artifact's upload: its key, the URL and the headers to send with it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub key: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Collection {
    /// Presigns a PUT of `name` from `instance` in `step`, valid for `valid_for`.
    pub async fn presign(
        &self,
        run_id: &str,
        step: &str,
        instance: &str,
        name: &str,
        valid_for: Duration,
    ) -> Result<Upload, String> {
        let key = self.target.collected_key(run_id, step, instance, name);
        let config = PresigningConfig::expires_in(valid_for)
            .map_err(|e| format!("presigning {key}: {e}"))?;
        let presigned = self
            .store
            .s3
            .put_object()
            .bucket(&self.store.bucket)
            .key(&key)
            .expected_bucket_owner(&self.store.owner)
            .if_none_match("*")
            .presigned(config)
            .await
            .map_err(|e| format!("presigning {key}: {e}"))?;
        Ok(Upload {
            name: name.to_owned(),
            key,
            url: presigned.uri().to_owned(),
            headers: presigned
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }
}

/// A shell-safe single-quoted word.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The lines put before the command body on the instance: a `firebreak_upload NAME FILE`
/// function that hashes the file, PUTs it to its presigned URL (with the URL's headers), prints
/// `firebreak-upload NAME SHA256 SIZE`, and removes the file whatever happened.
pub fn preamble(uploads: &[Upload]) -> Vec<String> {
    let mut lines = vec![
        "firebreak_upload() {".to_owned(),
        "  name=\"$1\"; file=\"$2\"; url=''; set --".to_owned(),
        "  case \"$name\" in".to_owned(),
    ];
    for upload in uploads {
        let mut headers = String::new();
        for (name, value) in &upload.headers {
            headers.push_str(&format!(" -H {}", quoted(&format!("{name}: {value}"))));
        }
        lines.push(format!(
            "    {}) url={}; set -- {headers} ;;",
            quoted(&upload.name),
            quoted(&upload.url)
        ));
    }
    lines.extend([
        "    *) echo \"firebreak_upload: no upload named $name\" >&2; rm -f \"$file\"; return 2 ;;"
            .to_owned(),
        "  esac".to_owned(),
        "  sum=\"$(sha256sum \"$file\" | cut -d' ' -f1)\"; size=\"$(stat -c %s \"$file\")\"".to_owned(),
        // An Object Lock bucket refuses a PUT without Content-MD5 (or an SDK checksum header,
        // which a presigned URL cannot carry); S3 also refuses bytes that do not match it.
        "  md5=\"$(openssl dgst -md5 -binary \"$file\" 2>/dev/null | base64 2>/dev/null)\"".to_owned(),
        "  [ -n \"$md5\" ] || md5=\"$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.md5(open(sys.argv[1],\"rb\").read()).digest()).decode())' \"$file\")\"".to_owned(),
        "  curl -fsS --retry 3 -X PUT \"$@\" -H \"Content-MD5: $md5\" --upload-file \"$file\" \"$url\"; status=$?".to_owned(),
        "  rm -f \"$file\"".to_owned(),
        "  [ \"$status\" -eq 0 ] && echo \"firebreak-upload $name $sum $size\"".to_owned(),
        "  return \"$status\"".to_owned(),
        "}".to_owned(),
    ]);
    lines
}

/// `firebreak-upload NAME SHA256 SIZE` lines from a command's output: what the instance says
/// it sent (a root attacker can make it say anything).
pub fn reported(stdout: &str) -> Vec<(String, String, u64)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("firebreak-upload ")?.split_whitespace();
            let name = words.next()?.to_owned();
            let sha = words.next()?.to_owned();
            let size = words.next()?.parse().ok()?;
            Some((name, sha, size))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preamble_quotes_urls_and_headers_and_reports_parse() {
        let upload = Upload {
            name: "volatile.tar.gz".into(),
            key: "k".into(),
            url: "https://b.s3.amazonaws.com/k?X-Amz-Signature=ab'cd".into(),
            headers: vec![("if-none-match".into(), "*".into())],
        };
        let text = preamble(&[upload]).join("\n");
        assert!(text.contains(r"url='https://b.s3.amazonaws.com/k?X-Amz-Signature=ab'\''cd'"));
        assert!(text.contains("-H 'if-none-match: *'"), "{text}");
        assert_eq!(
            reported("noise\nfirebreak-upload volatile.tar.gz abc 42\n"),
            vec![("volatile.tar.gz".to_owned(), "abc".to_owned(), 42)]
        );
    }
}
