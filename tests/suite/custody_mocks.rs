//! What AWS does and moto does not, for the seal (aws-smithy-mocks): `ExpectedBucketOwner` on a
//! bucket another account owns answers 403 (moto ignores the header); `kms:Verify` answers an
//! invalid signature with `KMSInvalidSignatureException` (moto answers `SignatureValid: false`);
//! a key that cannot sign is refused before the run relies on it.

use aws_sdk_kms::operation::verify::VerifyError;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::operation::get_object_lock_configuration::GetObjectLockConfigurationError;
use aws_smithy_mocks::mock;
use aws_smithy_types::error::ErrorMetadata;
use firebreak::custody::{bucket, statement, store::Store};
use firebreak::journal::custody::{Signed, Statement};

use crate::support::aws::MockAws;

fn error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("mocked {code}"))
        .build()
}

#[tokio::test]
async fn a_bucket_another_account_owns_is_refused_with_the_owner_named() {
    let denied = mock!(aws_sdk_s3::Client::get_object_lock_configuration)
        .match_requests(|r| r.expected_bucket_owner() == Some("123456789012"))
        .then_error(|| GetObjectLockConfigurationError::generic(error("AccessDenied")));
    let mocked = MockAws::new().s3([denied]).build();
    let store = Store {
        s3: mocked.clients.s3.clone(),
        bucket: "evidence-squatted".into(),
        owner: "123456789012".into(),
    };
    let refused = bucket::check(&store, 1).await.unwrap_err();
    assert!(
        refused.contains("not owned by account 123456789012"),
        "{refused}"
    );
    assert_eq!(mocked.calls(), ["s3:GetObjectLockConfiguration"]);
}

#[tokio::test]
async fn an_invalid_signature_is_reported_as_invalid_not_as_an_outage() {
    let invalid = mock!(aws_sdk_kms::Client::verify)
        .then_error(|| VerifyError::generic(error("KMSInvalidSignatureException")));
    let mocked = MockAws::new().kms([invalid]).build();
    let signed = Signed {
        statement: Statement {
            run_id: "R".into(),
            records: 3,
            head: "ab".into(),
            status: "succeeded".into(),
            key_id: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
            signed_at: "2026-12-02T10:00:00Z".into(),
        },
        algorithm: statement::ALGORITHM.into(),
        signature: "3044".into(),
        key: None,
        version_id: None,
    };
    let verdict = statement::verify_kms(&mocked.clients.kms, &signed)
        .await
        .unwrap_err();
    assert!(verdict.contains("not valid"), "{verdict}");
}

#[tokio::test]
async fn a_key_that_cannot_sign_heads_is_refused() {
    let symmetric = mock!(aws_sdk_kms::Client::describe_key).then_output(|| {
        aws_sdk_kms::operation::describe_key::DescribeKeyOutput::builder()
            .key_metadata(
                aws_sdk_kms::types::KeyMetadata::builder()
                    .key_id("k")
                    .key_spec(KeySpec::SymmetricDefault)
                    .key_usage(KeyUsageType::EncryptDecrypt)
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let mocked = MockAws::new().kms([symmetric]).build();
    let refused = statement::check_key(&mocked.clients.kms, "alias/wrong")
        .await
        .unwrap_err();
    assert!(refused.contains("ECC_NIST_P256 SIGN_VERIFY"), "{refused}");
}

#[tokio::test]
async fn the_seal_is_reached_in_its_own_region() {
    // AWS answers a request to the wrong region with a 301 the SDK does not follow (moto
    // answers from any region): the bucket's location decides the client's region.
    let located = mock!(aws_sdk_s3::Client::get_bucket_location)
        .match_requests(|r| r.expected_bucket_owner() == Some("123456789012"))
        .then_output(|| {
            aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build()
        });
    let mocked = MockAws::new().s3([located]).build();
    let s3 = firebreak::custody::store::in_bucket_region(
        &mocked.clients.s3,
        "evidence-elsewhere",
        "123456789012",
    )
    .await;
    assert_eq!(s3.config().region().unwrap().as_ref(), "eu-west-1");
    assert_eq!(mocked.calls(), ["s3:GetBucketLocation"]);
    // A key given by ARN is used in its region; an alias in the run's.
    let kms = statement::in_key_region(
        &mocked.clients.kms,
        "arn:aws:kms:ap-southeast-2:123456789012:key/k",
    );
    assert_eq!(kms.config().region().unwrap().as_ref(), "ap-southeast-2");
    let here = statement::in_key_region(&mocked.clients.kms, "alias/firebreak-heads");
    assert_eq!(
        here.config().region().map(|r| r.to_string()),
        mocked.clients.kms.config().region().map(|r| r.to_string())
    );
}
