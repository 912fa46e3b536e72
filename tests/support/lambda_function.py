#!/usr/bin/env python3
"""A compromised Lambda function in moto, and its full description for before/after compares.

seed NAME: an execution role, the function (a zip; environment variables, one a secret), an
SQS queue feeding it through an event source mapping, a function URL open to everyone
(AuthType NONE) with the policy statement that allows it, a second statement for S3 (not
public), tags. Prints {"function_name", "function_arn", "role_name", "queue_arn", "uuid",
"secret"}.

describe NAME: everything a containment may change, volatile fields (modification times,
revision ids) left out. Loopback endpoints only.
"""
import io
import json
import sys
import zipfile
from urllib.parse import urlparse

import boto3

ENDPOINT = sys.argv[3] if len(sys.argv) > 3 else "http://127.0.0.1:5000"
VOLATILE = {"LastModified", "RevisionId", "LastModifiedTime", "CreationTime", "LastUpdateStatus",
            "StateTransitionReason", "ResponseMetadata"}


def client(service):
    assert urlparse(ENDPOINT).hostname in ("127.0.0.1", "localhost"), "loopback only"
    return boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def seed(name):
    iam, lam, sqs = client("iam"), client("lambda"), client("sqs")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
             "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName=f"{name}-exec", AssumeRolePolicyDocument=trust)["Role"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        # A fixed date: the same zip (and code hash) every seed.
        z.writestr(zipfile.ZipInfo("handler.py", date_time=(2026, 1, 1, 0, 0, 0)),
                   "def handler(event, context):\n    return event\n")
    secret = "sk_live_4f9c2b7e81d3a6"
    fn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=role["Arn"],
                             Handler="handler.handler", Code={"ZipFile": code.getvalue()},
                             Environment={"Variables": {"PAYMENTS_API_KEY": secret, "STAGE": "prod"}},
                             Tags={"team": "payments"})
    queue = sqs.create_queue(QueueName=f"{name}-jobs")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, Enabled=True)
    lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="FunctionURLAllowPublicAccess",
                       Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="s3-invoke", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::uploads-bucket",
                       SourceAccount="123456789012")
    print(json.dumps({"function_name": name, "function_arn": fn["FunctionArn"],
                      "role_name": role["RoleName"], "queue_arn": queue_arn,
                      "uuid": mapping["UUID"], "secret": secret}))


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def describe(name):
    lam = client("lambda")
    got = lam.get_function(FunctionName=name)
    out = {"configuration": strip(got["Configuration"]), "tags": got.get("Tags", {})}
    out["concurrency"] = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    try:
        out["url"] = strip(lam.get_function_url_config(FunctionName=name))
    except lam.exceptions.ResourceNotFoundException:
        out["url"] = None
    try:
        policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
        out["statements"] = sorted(policy["Statement"], key=lambda s: s["Sid"])
    except lam.exceptions.ResourceNotFoundException:
        out["statements"] = []
    mappings = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    out["event_sources"] = sorted((strip(m) for m in mappings), key=lambda m: m["UUID"])
    print(json.dumps(out, sort_keys=True))


def prior_state(name):
    """A reserved concurrency and a case tag from an earlier case, for a release to put back."""
    lam = client("lambda")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"firebreak:case": "an-earlier-case"})
    print("{}")


def late_public(name):
    """A public statement someone adds after the containment."""
    client("lambda").add_permission(FunctionName=name, StatementId="LateAddition",
                                    Action="lambda:InvokeFunction", Principal="*")
    print("{}")


def set_concurrency(name):
    client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    print("{}")


if __name__ == "__main__":
    {"seed": seed, "describe": describe, "prior-state": prior_state, "late-public": late_public,
     "set-concurrency": set_concurrency}[sys.argv[1]](sys.argv[2])
