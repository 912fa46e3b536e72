//! Signed heads: a KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`) signs a small canonical
//! [`Statement`] of the journal's head — RAW message, `ECDSA_SHA_256` — and anyone checks it
//! with `kms:Verify` or, offline, with the key's public half.

use std::path::Path;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use crate::aws::error::AwsError;
use crate::journal::custody::{Signed, Statement};

pub const ALGORITHM: &str = "ECDSA_SHA_256";

/// A KMS client in the key's region when the key is given by ARN (a key lives in one region;
/// the run may act in another).
pub fn in_key_region(kms: &aws_sdk_kms::Client, key: &str) -> aws_sdk_kms::Client {
    let region = key
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(2))
        .filter(|r| !r.is_empty());
    match region {
        Some(region) if kms.config().region().map(|r| r.as_ref()) != Some(region) => {
            aws_sdk_kms::Client::from_conf(
                kms.config()
                    .to_builder()
                    .region(aws_sdk_kms::config::Region::new(region.to_owned()))
                    .build(),
            )
        }
        _ => kms.clone(),
    }
}

/// The key's ARN, once it is known to be an asymmetric P-256 signing key.
pub async fn check_key(kms: &aws_sdk_kms::Client, key: &str) -> Result<String, String> {
    let described = kms.describe_key().key_id(key).send().await.map_err(|e| {
        format!(
            "signing key {key}: {}",
            AwsError::from_sdk("kms", "DescribeKey", e)
        )
    })?;
    let metadata = described
        .key_metadata()
        .ok_or_else(|| format!("signing key {key}: DescribeKey returned no metadata"))?;
    if metadata.key_spec() != Some(&KeySpec::EccNistP256)
        || metadata.key_usage() != Some(&KeyUsageType::SignVerify)
    {
        return Err(format!(
            "signing key {key} is {} for {}; an ECC_NIST_P256 SIGN_VERIFY key is needed \
             (deploy/evidence.yaml makes one)",
            metadata.key_spec().map_or("of no spec", |s| s.as_str()),
            metadata.key_usage().map_or("no usage", |u| u.as_str()),
        ));
    }
    Ok(metadata
        .arn()
        .map(str::to_owned)
        .unwrap_or_else(|| metadata.key_id().to_owned()))
}

/// Signs the statement with its key.
pub async fn sign(kms: &aws_sdk_kms::Client, statement: Statement) -> Result<Signed, String> {
    let answer = kms
        .sign()
        .key_id(&statement.key_id)
        .message(Blob::new(statement.canonical()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .map_err(|e| format!("signing the head: {}", AwsError::from_sdk("kms", "Sign", e)))?;
    let signature = answer
        .signature()
        .ok_or("signing the head: kms:Sign returned no signature")?;
    Ok(Signed {
        statement,
        algorithm: ALGORITHM.into(),
        signature: hex::encode(signature.as_ref()),
        key: None,
        version_id: None,
    })
}

/// Checks a signature with `kms:Verify` (the key's own verdict; needs `kms:Verify`).
pub async fn verify_kms(kms: &aws_sdk_kms::Client, signed: &Signed) -> Result<(), String> {
    let kms = &in_key_region(kms, &signed.statement.key_id);
    let signature =
        hex::decode(&signed.signature).map_err(|_| "the signature is not hex".to_owned())?;
    let answer = kms
        .verify()
        .key_id(&signed.statement.key_id)
        .message(Blob::new(signed.statement.canonical()))
        .message_type(MessageType::Raw)
        .signature(Blob::new(signature))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await;
    match answer {
        Ok(answer) if answer.signature_valid() => Ok(()),
        Ok(_) => Err("kms:Verify says the signature is not valid".into()),
        Err(e) => {
            let error = AwsError::from_sdk("kms", "Verify", e);
            // AWS answers an invalid signature with an error, not `SignatureValid: false`.
            if error.code.as_deref() == Some("KMSInvalidSignatureException") {
                Err("kms:Verify says the signature is not valid".into())
            } else {
                Err(format!("could not check the signature: {error}"))
            }
        }
    }
}

/// A public key from a file: PEM (`-----BEGIN PUBLIC KEY-----`) or DER (SubjectPublicKeyInfo,
/// as `aws kms get-public-key` returns it, base64-decoded).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read public key {}: {e}", path.display()))?;
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN PUBLIC KEY-----") => {
            VerifyingKey::from_public_key_pem(text).map_err(|e| e.to_string())
        }
        _ => VerifyingKey::from_public_key_der(&bytes).map_err(|e| e.to_string()),
    };
    parsed.map_err(|e| {
        format!(
            "{} is not a P-256 public key in PEM or DER (SubjectPublicKeyInfo): {e}",
            path.display()
        )
    })
}

/// Checks a signature offline with the key's public half.
pub fn verify_offline(key: &VerifyingKey, signed: &Signed) -> Result<(), String> {
    let der = hex::decode(&signed.signature).map_err(|_| "the signature is not hex".to_owned())?;
    let signature = Signature::from_der(&der)
        .map_err(|e| format!("the signature is not a DER ECDSA signature: {e}"))?;
    key.verify(&signed.statement.canonical(), &signature)
        .map_err(|_| "the signature does not match the statement and public key".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    fn statement() -> Statement {
        Statement {
            run_id: "R1".into(),
            records: 12,
            head: "ab".repeat(32),
            status: "succeeded".into(),
            key_id: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
            signed_at: "2026-12-02T10:00:00Z".into(),
        }
    }

    #[test]
    fn an_offline_check_accepts_the_signature_and_nothing_else() {
        let signing = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let signature: Signature = signing.sign(&statement().canonical());
        let signed = Signed {
            statement: statement(),
            algorithm: ALGORITHM.into(),
            signature: hex::encode(signature.to_der().as_bytes()),
            key: None,
            version_id: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("key.pem");
        let public = signing.verifying_key();
        std::fs::write(&pem, public.to_public_key_pem(Default::default()).unwrap()).unwrap();
        let der = dir.path().join("key.der");
        std::fs::write(&der, public.to_public_key_der().unwrap().as_bytes()).unwrap();
        for path in [&pem, &der] {
            let key = read_public_key(path).unwrap();
            verify_offline(&key, &signed).unwrap();
            let mut changed = signed.clone();
            changed.statement.records = 11;
            assert!(verify_offline(&key, &changed).is_err());
        }
        std::fs::write(&der, b"not a key").unwrap();
        assert!(
            read_public_key(&der)
                .unwrap_err()
                .contains("not a P-256 public key")
        );
    }
}
