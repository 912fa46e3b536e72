"""Creates, in the moto sandbox, what deploy/evidence.yaml creates on AWS: an S3 bucket with
Object Lock in COMPLIANCE mode (default retention), versioning, SSE-KMS, a public access block,
and an asymmetric ECC_NIST_P256 SIGN_VERIFY key for signing journal heads. Prints
{"seal": "s3://BUCKET/cases", "sign_key": ARN, "bucket": BUCKET} as JSON.

Through the S3 and KMS APIs, not CloudFormation: moto's CloudFormation creates the bucket without
its ObjectLockConfiguration and a KMS key it cannot describe, so the template itself is checked
by cfn-lint (scripts/lint-templates) and these are the same settings made by hand.
"""

import argparse
import json

import boto3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--bucket", default="firebreak-evidence-sandbox")
    parser.add_argument("--retention-days", type=int, default=30)
    parser.add_argument("--mode", default="COMPLIANCE", help="default retention mode (tests try GOVERNANCE)")
    args = parser.parse_args()
    kw = dict(endpoint_url=args.endpoint, region_name=args.region,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = boto3.client("s3", **kw)
    kms = boto3.client("kms", **kw)
    encryption = kms.create_key(Description="firebreak evidence bucket encryption")["KeyMetadata"]
    s3.create_bucket(Bucket=args.bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=args.bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": args.mode, "Days": args.retention_days}},
        },
    )
    s3.put_bucket_encryption(
        Bucket=args.bucket,
        ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": encryption["Arn"]},
            "BucketKeyEnabled": True,
        }]},
    )
    s3.put_public_access_block(
        Bucket=args.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
    )
    signing = kms.create_key(
        Description="firebreak journal head signing (ECDSA P-256)",
        KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY",
    )["KeyMetadata"]
    print(json.dumps({
        "seal": f"s3://{args.bucket}/cases",
        "sign_key": signing["Arn"],
        "bucket": args.bucket,
    }))


if __name__ == "__main__":
    main()
