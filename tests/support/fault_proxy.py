#!/usr/bin/env python3
"""Counting, fault-injecting HTTP/1.1 reverse proxy for AWS SDK traffic (put in front of moto).

Integration tests point the AWS SDK at this proxy instead of at moto. Every request is
classified (service, region, access key, operation, DryRun flag, target ids), recorded, and
either forwarded to the upstream or answered with an injected fault shaped like the real
service's error, so the SDK retries/classifies it exactly as it would against AWS.

Command line::

    python3 fault_proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--host 127.0.0.1]
                           [--parent-pid PID] [--upstream-timeout S] [--verbose]

On start it prints exactly one line, ``listening http://HOST:PORT``, to stdout and serves
until SIGTERM/SIGINT (exit status 0), or until ``--parent-pid`` no longer exists.

Control API (same port; never forwarded, never recorded; JSON in and out):

    GET  /__proxy/calls[?since=SEQ]  -> [call, ...] ordered by seq (only seq > SEQ if given)
    GET  /__proxy/stats              -> {"calls": n, "by_operation": {"ec2:DescribeInstances": n},
                                         "faults": {"throttle": n}}
    GET  /__proxy/faults             -> {"seed": s, "rules": [...], "injected": [n per rule]}
    POST /__proxy/faults             <- {"seed": 42, "rules": [rule, ...]}  -> {}
    POST /__proxy/reset              -> {}  (clears calls, seq, attempt counters, fault rules,
                                        principals)
    POST /__proxy/principals         <- {"ACCESS_KEY": "PRINCIPAL_ID", ...}  -> {}: see SenderId
    GET  /__proxy/requests           -> [{seq, method, path, headers, body (base64)}, ...]: with
                                        --keep-requests, each recorded call's request as sent
                                        (scripts/bench replays them for its floor)

A call is a dict: seq, t, method, path, service, region, access_key, operation, mutating,
dry_run, target_ids, attempt, status, upstream_status, fault, ms, error. ``status`` and ``ms``
are null while the request is still in flight (e.g. during a ``hang``).

A rule: {"service": "ec2", "operation": "Describe*" (fnmatch glob), "fault": "throttle" |
"error500" | "lost" | "delay" | "hang", "rate": 1.0, "delay_ms": 0, "hang_s": 300,
"max": N, "dry_run": true|false}; every key except "fault" is optional. The first rule that
matches the request and whose die says yes decides its fate; otherwise it is forwarded.

Dice are deterministic so that fates do not depend on thread timing: ``attempt`` counts
earlier requests with the same (service, operation, canonical request), and the die for rule
i is sha256(f"{seed}|{i}|{service}|{operation}|{attempt}|" + canonical)[:8] / 2**64 < rate.
The canonical request is the body bytes; when the request target is not "/" (S3 and REST
APIs, GET query requests) it is prefixed with b"METHOD TARGET\\n" so that requests that differ
only by path do not share attempt counters.

Requests under ``/moto-api/`` are forwarded but not recorded and never faulted.

The SSM agent's uploads, as far as moto cannot run them: moto answers SendCommand without
running anything, so for a forwarded SendCommand whose commands define firebreak's upload
functions (presigned uploads to the run's seal) this proxy runs those very functions with bash
— ``firebreak_upload NAME FILE`` for each upload they know, so curl sends each artifact through
this proxy, recorded like any call — before the SendCommand's answer is relayed. The artifact is
``simulated NAME from INSTANCE\n`` repeated: once for a single PUT, two and a half parts' worth for
a multipart upload. What the functions print (and a failure) is added to that command's
GetCommandInvocation answers, as the agent would report it. Needs bash, curl and coreutils.

SQS's SenderId, as far as moto cannot stamp it: SQS stamps each message with the principal id
of whoever sent it (an IAM user's id, or a role's id and session name); moto (5.2.5) stamps a
constant. Given the principal behind an access key (POST /__proxy/principals, what IAM says
that key's principal is), this proxy remembers the key each SendMessage was signed with and
sets SenderId in ReceiveMessage answers to that key's principal id, as SQS would. Messages sent
with keys it was not told about keep moto's constant.

One answer of moto's is renamed, not changed: ListParts' root element, which moto (5.2.5) calls
ListPartsResponse where S3 says ListPartsResult (the Rust SDK refuses the former).
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import http.client
import http.server
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

CONTROL_PREFIX = "/__proxy/"
MOTO_API_PREFIX = "/moto-api/"

# Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection, never forwarded.
# Transfer-Encoding and Content-Length are recomputed because we re-frame bodies ourselves;
# Expect is dropped because the client's 100-continue was already answered by us.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "trailers", "upgrade", "transfer-encoding"}
)
REQUEST_DROP = HOP_BY_HOP | {"content-length", "expect"}
RESPONSE_DROP = HOP_BY_HOP | {"content-length"}

FAULTS = ("throttle", "error500", "lost", "delay", "hang")
RULE_KEYS = {"service", "operation", "fault", "rate", "delay_ms", "hang_s", "max", "dry_run"}

READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Simulate", "Search")
READ_ONLY_OPERATIONS = frozenset(
    {"ReceiveMessage", "GetCallerIdentity", "Scan", "Query", "BatchGetItem",
     "TestEventPattern", "Verify"}
)
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Query-protocol services other than EC2 (they share the awsQuery error shape).
QUERY_SERVICES = frozenset(
    {"iam", "sts", "sns", "sqs", "autoscaling", "cloudformation", "elasticloadbalancing",
     "rds", "elasticache", "cloudwatch", "monitoring", "ses", "email"}
)
EC2_API_VERSION = "2016-11-15"  # identifies unsigned EC2 query requests

CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
# Query parameters (and JSON keys) whose values name the resources a call acts on.
TARGET_PARAM_RE = re.compile(
    r"^(?:InstanceId|NetworkInterfaceId|GroupId|SecurityGroupId|VolumeId|SnapshotId|ResourceId"
    r"|AllocationId|AssociationId|ImageId|AccessKeyId|UserName|RoleName|InstanceProfileName"
    r"|PolicyArn|AutoScalingGroupName)"
)
FILTER_VALUE_RE = re.compile(r"^Filter\.\d+\.Value\.\d+$")
DATE_SEGMENT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


@dataclass
class Classified:
    """What a request is, as far as tests care."""

    service: str = "unknown"
    region: str | None = None
    access_key: str | None = None
    operation: str = "unknown"
    protocol: str = "restjson"  # ec2 | query | json | restxml | restjson
    dry_run: bool = False
    mutating: bool = True
    target_ids: list[str] = field(default_factory=list)
    json_content_type: str = "application/x-amz-json-1.1"


def parse_credential(headers, query_pairs) -> tuple[str | None, str | None, str | None]:
    """(access_key, region, service) from a SigV4 Authorization header or presigned query."""
    scope = headers.get("Authorization") or ""
    match = CREDENTIAL_RE.search(scope)
    if not match:
        presigned = dict(query_pairs).get("X-Amz-Credential")
        match = CREDENTIAL_RE.search("Credential=" + presigned) if presigned else None
    if not match:
        return None, None, None
    return match.group(1), match.group(3), match.group(4)


def form_params(method: str, query: str, headers, body: bytes) -> list[tuple[str, str]]:
    """Query-protocol parameters: the query string, then a form-urlencoded body."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    content_type = (headers.get("Content-Type") or "").lower()
    looks_like_form = "x-www-form-urlencoded" in content_type or (
        not content_type and method == "POST" and body[:7] == b"Action="
    )
    if body and looks_like_form:
        text = body.decode("utf-8", "replace")
        pairs += urllib.parse.parse_qsl(text, keep_blank_values=True)
    return pairs


def is_mutating(operation: str, method: str) -> bool:
    # Fallback names ("GET /x", "PUT s3") carry the HTTP method; judge those by the method.
    if re.match(r"^[A-Z]+ ", operation):
        return method not in READ_ONLY_METHODS
    if operation in READ_ONLY_OPERATIONS or operation.startswith(READ_ONLY_PREFIXES):
        return False
    return True


def query_target_ids(pairs: list[tuple[str, str]]) -> list[str]:
    ids = []
    for name, value in pairs:
        if value and (TARGET_PARAM_RE.match(name) or FILTER_VALUE_RE.match(name)):
            ids.append(value)
    return ids


def json_target_ids(body: bytes) -> list[str]:
    """Values under id-like keys anywhere in a JSON body (e.g. SSM InstanceIds, Targets)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    ids: list[str] = []

    def strings(value):
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return []

    def walk(node):
        if isinstance(node, dict):
            # SSM-style {"Key": "InstanceIds", "Values": [...]}
            key = node.get("Key")
            if isinstance(key, str) and TARGET_PARAM_RE.match(key):
                ids.extend(strings(node.get("Values")))
            for name, value in node.items():
                if TARGET_PARAM_RE.match(name):
                    ids.extend(strings(value))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return ids


def dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# S3 sub-resources: query key -> {method: operation}. Checked in this order, first hit wins.
S3_BUCKET_SUBRESOURCES = [
    ("object-lock", {"PUT": "PutObjectLockConfiguration", "GET": "GetObjectLockConfiguration"}),
    ("versioning", {"PUT": "PutBucketVersioning", "GET": "GetBucketVersioning"}),
    ("policyStatus", {"GET": "GetBucketPolicyStatus"}),
    ("policy", {"PUT": "PutBucketPolicy", "GET": "GetBucketPolicy", "DELETE": "DeleteBucketPolicy"}),
    ("publicAccessBlock", {"PUT": "PutPublicAccessBlock", "GET": "GetPublicAccessBlock",
                           "DELETE": "DeletePublicAccessBlock"}),
    ("ownershipControls", {"PUT": "PutBucketOwnershipControls", "GET": "GetBucketOwnershipControls",
                           "DELETE": "DeleteBucketOwnershipControls"}),
    ("acl", {"PUT": "PutBucketAcl", "GET": "GetBucketAcl"}),
    ("tagging", {"PUT": "PutBucketTagging", "GET": "GetBucketTagging", "DELETE": "DeleteBucketTagging"}),
    ("encryption", {"PUT": "PutBucketEncryption", "GET": "GetBucketEncryption",
                    "DELETE": "DeleteBucketEncryption"}),
    ("lifecycle", {"PUT": "PutBucketLifecycleConfiguration", "GET": "GetBucketLifecycleConfiguration",
                   "DELETE": "DeleteBucketLifecycle"}),
    ("cors", {"PUT": "PutBucketCors", "GET": "GetBucketCors", "DELETE": "DeleteBucketCors"}),
    ("logging", {"PUT": "PutBucketLogging", "GET": "GetBucketLogging"}),
    ("notification", {"PUT": "PutBucketNotificationConfiguration",
                      "GET": "GetBucketNotificationConfiguration"}),
    ("website", {"PUT": "PutBucketWebsite", "GET": "GetBucketWebsite", "DELETE": "DeleteBucketWebsite"}),
    ("replication", {"PUT": "PutBucketReplication", "GET": "GetBucketReplication",
                     "DELETE": "DeleteBucketReplication"}),
    ("location", {"GET": "GetBucketLocation"}),
    ("versions", {"GET": "ListObjectVersions"}),
    ("uploads", {"GET": "ListMultipartUploads"}),
    ("delete", {"POST": "DeleteObjects"}),
]
S3_OBJECT_SUBRESOURCES = [
    ("retention", {"PUT": "PutObjectRetention", "GET": "GetObjectRetention"}),
    ("legal-hold", {"PUT": "PutObjectLegalHold", "GET": "GetObjectLegalHold"}),
    ("acl", {"PUT": "PutObjectAcl", "GET": "GetObjectAcl"}),
    ("tagging", {"PUT": "PutObjectTagging", "GET": "GetObjectTagging", "DELETE": "DeleteObjectTagging"}),
    ("attributes", {"GET": "GetObjectAttributes"}),
    ("uploads", {"POST": "CreateMultipartUpload"}),
    ("restore", {"POST": "RestoreObject"}),
    ("select", {"POST": "SelectObjectContent"}),
]


def s3_bucket_and_key(path: str, host: str) -> tuple[str, str]:
    """Split an S3 request into (bucket, key), for path-style and virtual-host-style URLs."""
    hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else ""
    virtual_bucket = None
    if hostname and not re.match(r"^\d+\.\d+\.\d+\.\d+$", hostname):
        for marker in (".s3.", ".s3-"):
            if marker in hostname:
                virtual_bucket = hostname.split(marker, 1)[0]
                break
        else:
            if hostname.endswith(".localhost"):
                virtual_bucket = hostname[: -len(".localhost")]
    stripped = path.lstrip("/")
    if virtual_bucket:
        return virtual_bucket, stripped
    bucket, _, key = stripped.partition("/")
    return bucket, key


def s3_operation(method: str, path: str, query_pairs, headers) -> str:
    bucket, key = s3_bucket_and_key(path, headers.get("Host") or "")
    params = dict(query_pairs)
    copy = "x-amz-copy-source" in {k.lower() for k in headers.keys()}
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} s3"
    if not key:
        for sub, by_method in S3_BUCKET_SUBRESOURCES:
            if sub in params and method in by_method:
                return by_method[method]
        plain = {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}
        if method == "GET":
            return "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects"
        return plain.get(method, f"{method} s3")
    if "uploadId" in params:
        if method == "PUT" and "partNumber" in params:
            return "UploadPartCopy" if copy else "UploadPart"
        multipart = {"POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload",
                     "GET": "ListParts"}
        return multipart.get(method, f"{method} s3")
    for sub, by_method in S3_OBJECT_SUBRESOURCES:
        if sub in params and method in by_method:
            return by_method[method]
    plain = {"PUT": "CopyObject" if copy else "PutObject", "GET": "GetObject",
             "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return plain.get(method, f"{method} s3")


# REST-JSON routes worth naming: (service, method, path regex, operation).
REST_JSON_ROUTES = [
    ("securityhub", "POST", r"/findings/import", "BatchImportFindings"),
    ("securityhub", "POST", r"/findings", "GetFindings"),
    ("securityhub", "PATCH", r"/findings/batchupdate", "BatchUpdateFindings"),
    ("securityhub", "PATCH", r"/findings", "UpdateFindings"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/functions/?", "ListFunctions"),
    ("lambda", "POST", r"/\d{4}-\d\d-\d\d/functions/?", "CreateFunction"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/functions/[^/]+/?", "GetFunction"),
    ("lambda", "DELETE", r"/\d{4}-\d\d-\d\d/functions/[^/]+/?", "DeleteFunction"),
    ("lambda", "POST", r"/\d{4}-\d\d-\d\d/functions/[^/]+/invocations", "Invoke"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/functions/[^/]+/configuration", "GetFunctionConfiguration"),
    ("lambda", "PUT", r"/\d{4}-\d\d-\d\d/functions/[^/]+/configuration", "UpdateFunctionConfiguration"),
    ("lambda", "PUT", r"/\d{4}-\d\d-\d\d/functions/[^/]+/code", "UpdateFunctionCode"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/functions/[^/]+/policy", "GetPolicy"),
    ("lambda", "POST", r"/\d{4}-\d\d-\d\d/functions/[^/]+/policy", "AddPermission"),
    ("lambda", "DELETE", r"/\d{4}-\d\d-\d\d/functions/[^/]+/policy/[^/]+", "RemovePermission"),
    ("lambda", "PUT", r"/\d{4}-\d\d-\d\d/functions/[^/]+/concurrency", "PutFunctionConcurrency"),
    ("lambda", "DELETE", r"/\d{4}-\d\d-\d\d/functions/[^/]+/concurrency", "DeleteFunctionConcurrency"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/functions/[^/]+/concurrency", "GetFunctionConcurrency"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/tags/.+", "ListTags"),
    ("lambda", "POST", r"/\d{4}-\d\d-\d\d/tags/.+", "TagResource"),
    ("lambda", "DELETE", r"/\d{4}-\d\d-\d\d/tags/.+", "UntagResource"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/event-source-mappings/?", "ListEventSourceMappings"),
    ("lambda", "POST", r"/\d{4}-\d\d-\d\d/event-source-mappings/?", "CreateEventSourceMapping"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/event-source-mappings/[^/]+", "GetEventSourceMapping"),
    ("lambda", "PUT", r"/\d{4}-\d\d-\d\d/event-source-mappings/[^/]+", "UpdateEventSourceMapping"),
    ("lambda", "DELETE", r"/\d{4}-\d\d-\d\d/event-source-mappings/[^/]+", "DeleteEventSourceMapping"),
    ("lambda", "GET", r"/\d{4}-\d\d-\d\d/functions/[^/]+/url", "GetFunctionUrlConfig"),
    ("lambda", "POST", r"/\d{4}-\d\d-\d\d/functions/[^/]+/url", "CreateFunctionUrlConfig"),
    ("lambda", "PUT", r"/\d{4}-\d\d-\d\d/functions/[^/]+/url", "UpdateFunctionUrlConfig"),
    ("lambda", "DELETE", r"/\d{4}-\d\d-\d\d/functions/[^/]+/url", "DeleteFunctionUrlConfig"),
    ("guardduty", "GET", r"/detector", "ListDetectors"),
    ("guardduty", "POST", r"/detector/[^/]+/findings", "ListFindings"),
    ("guardduty", "POST", r"/detector/[^/]+/findings/get", "GetFindings"),
    ("guardduty", "POST", r"/detector/[^/]+/findings/archive", "ArchiveFindings"),
]


def rest_json_operation(service: str, method: str, path: str) -> str:
    for route_service, route_method, pattern, operation in REST_JSON_ROUTES:
        if route_service == service and route_method == method and re.fullmatch(pattern, path):
            return operation
    # Unknown route: keep it stable across runs by masking the parts that look like ids.
    segments = []
    for segment in path.split("/"):
        looks_like_id = (
            not DATE_SEGMENT_RE.match(segment)
            and (re.search(r"[0-9%:=.]", segment) or len(segment) > 40)
        )
        segments.append("{id}" if looks_like_id else segment)
    return f"{method} {'/'.join(segments) or '/'}"


def query_service_from_version(pairs) -> str | None:
    """Unsigned query requests: tell EC2 apart by its API version (only for error shapes)."""
    return "ec2" if dict(pairs).get("Version") == EC2_API_VERSION else None


def classify(method: str, target: str, headers, body: bytes) -> Classified:
    """Service, operation, protocol and the rest of the recorded facts for one request."""
    path, _, query = target.partition("?")
    query_pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    info = Classified()
    access_key, region, service = parse_credential(headers, query_pairs)
    info.access_key, info.region = access_key, region
    info.service = service or "unknown"

    amz_target = headers.get("X-Amz-Target")
    pairs = form_params(method, query, headers, body)
    params = dict(pairs)
    if amz_target:
        info.protocol = "json"
        info.operation = amz_target.rsplit(".", 1)[-1]
        content_type = headers.get("Content-Type") or ""
        if content_type.startswith("application/x-amz-json"):
            info.json_content_type = content_type
        info.target_ids = json_target_ids(body)
    elif "Action" in params and info.service != "s3":
        ec2 = info.service == "ec2" or (
            info.service == "unknown" and query_service_from_version(pairs) == "ec2"
        )
        info.protocol = "ec2" if ec2 else "query"
        info.operation = params["Action"]
        info.dry_run = params.get("DryRun", "").lower() == "true"
        info.target_ids = query_target_ids(pairs)
    elif info.service == "s3":
        info.protocol = "restxml"
        info.operation = s3_operation(method, path, query_pairs, headers)
    elif info.service in QUERY_SERVICES or info.service == "ec2":
        # A query-protocol service without an Action: malformed, but keep its error shape.
        info.protocol = "ec2" if info.service == "ec2" else "query"
        info.operation = f"{method} {path}"
    else:
        info.protocol = "restjson"
        info.operation = rest_json_operation(info.service, method, path)
        info.target_ids = json_target_ids(body) if body else []
    info.target_ids = dedupe(info.target_ids)
    info.mutating = is_mutating(info.operation, method)
    return info


# --------------------------------------------------------------------------------------------
# Fault responses, each in its protocol's own error shape
# --------------------------------------------------------------------------------------------

ERRORS = {
    # kind -> protocol -> (status, code, message)
    "throttle": {
        "ec2": (503, "RequestLimitExceeded", "Request limit exceeded."),
        "query": (400, "Throttling", "Rate exceeded"),
        "json": (400, "ThrottlingException", "Rate exceeded"),
        "restxml": (503, "SlowDown", "Please reduce your request rate."),
        "restjson": (429, "TooManyRequestsException", "Rate exceeded"),
    },
    "error500": {
        "ec2": (500, "InternalError", "An internal error has occurred."),
        "query": (500, "InternalFailure", "An internal error has occurred."),
        "json": (500, "InternalFailure", "An internal error has occurred."),
        "restxml": (500, "InternalError", "We encountered an internal error. Please try again."),
        "restjson": (500, "InternalFailure", "An internal error has occurred."),
    },
}


def error_response(kind: str, info: Classified) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) for an injected error; kind is "throttle" or "error500"."""
    status, code, message = ERRORS[kind][info.protocol]
    request_id = str(uuid.uuid4())
    if info.protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        )
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif info.protocol == "query":
        kind_of_fault = "Receiver" if status >= 500 else "Sender"
        body = (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<Error><Type>{kind_of_fault}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    elif info.protocol == "json":
        body = json.dumps({"__type": code, "message": message}, separators=(",", ":"))
        headers = [("Content-Type", info.json_content_type), ("x-amzn-RequestId", request_id)]
    elif info.protocol == "restxml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:
        body = json.dumps({"message": message}, separators=(",", ":"))
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                   ("x-amzn-RequestId", request_id)]
    return status, headers, body.encode()


# --------------------------------------------------------------------------------------------
# Fault rules and dice
# --------------------------------------------------------------------------------------------


class RuleError(ValueError):
    """A fault configuration that the control API refuses (answered with 400)."""


def validate_rules(document) -> tuple[object, list[dict]]:
    if not isinstance(document, dict):
        raise RuleError("expected a JSON object {\"seed\": ..., \"rules\": [...]}")
    unknown = set(document) - {"seed", "rules"}
    if unknown:
        raise RuleError(f"unknown keys: {sorted(unknown)}")
    seed = document.get("seed", 0)
    if not isinstance(seed, (int, str)) or isinstance(seed, bool):
        raise RuleError("seed must be an integer or a string")
    rules = document.get("rules", [])
    if not isinstance(rules, list):
        raise RuleError("rules must be a list")
    return seed, [validate_rule(i, rule) for i, rule in enumerate(rules)]


def validate_rule(index: int, rule) -> dict:
    def fail(why):
        raise RuleError(f"rule {index}: {why}")

    if not isinstance(rule, dict):
        fail("must be an object")
    unknown = set(rule) - RULE_KEYS
    if unknown:  # a typo such as "operaton" must not silently match everything
        fail(f"unknown keys {sorted(unknown)}")
    if rule.get("fault") not in FAULTS:
        fail(f"fault must be one of {list(FAULTS)}")
    for key in ("service", "operation"):
        if rule.get(key) is not None and not isinstance(rule[key], str):
            fail(f"{key} must be a string")
    number = (int, float)
    rate = rule.get("rate", 1)
    if not isinstance(rate, number) or isinstance(rate, bool) or not 0 <= rate <= 1:
        fail("rate must be a number in 0..1")
    for key in ("delay_ms", "hang_s"):
        value = rule.get(key, 0)
        if not isinstance(value, number) or isinstance(value, bool) or value < 0:
            fail(f"{key} must be a non-negative number")
    limit = rule.get("max")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        fail("max must be a non-negative integer")
    if rule.get("dry_run") is not None and not isinstance(rule["dry_run"], bool):
        fail("dry_run must be true or false")
    return {
        "service": rule.get("service"),
        "operation": rule.get("operation"),
        "fault": rule["fault"],
        "rate": float(rate),
        "delay_ms": float(rule.get("delay_ms", 0)),
        "hang_s": float(rule.get("hang_s", 300)),
        "max": limit,
        "dry_run": rule.get("dry_run"),
    }


def rule_matches(rule: dict, info: Classified) -> bool:
    if rule["service"] is not None and rule["service"] != info.service:
        return False
    if rule["operation"] is not None and not fnmatch.fnmatchcase(info.operation, rule["operation"]):
        return False
    if rule["dry_run"] is not None and rule["dry_run"] != info.dry_run:
        return False
    return True


def die(seed, index: int, info: Classified, attempt: int, canonical: bytes) -> float:
    """A uniform number in [0, 1) fixed by the request and its attempt number, not by timing."""
    prefix = f"{seed}|{index}|{info.service}|{info.operation}|{attempt}|".encode()
    digest = hashlib.sha256(prefix + canonical).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def canonical_request(method: str, target: str, body: bytes) -> bytes:
    # Query and JSON protocols always POST to "/", so their body alone identifies them.
    if target in ("", "/"):
        return body
    return f"{method} {target}\n".encode() + body


# --------------------------------------------------------------------------------------------
# The proxy's state
# --------------------------------------------------------------------------------------------


class Proxy:
    """All mutable state: recorded calls, attempt counters and fault rules, under one lock."""

    def __init__(self, upstream: str, upstream_timeout: float, verbose: bool,
                 keep_requests: bool = False):
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--upstream must be http://HOST:PORT, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_timeout = upstream_timeout
        self.verbose = verbose
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.calls: list[dict] = []
        # --keep-requests: each recorded call's request as sent (for scripts/bench's floor).
        self.keep_requests = keep_requests
        self.requests: list[dict] = []
        self.seq = 0
        self.attempts: dict[tuple, int] = {}
        self.seed: object = 0
        self.rules: list[dict] = []
        self.injected: list[int] = []
        # SQS's SenderId: access key -> principal id, and message id -> the key that sent it.
        self.principals: dict[str, str] = {}
        self.senders: dict[str, str] = {}
        # SendMessage calls forwarded and not yet answered: a ReceiveMessage (a long poll) can
        # return the message before its SendMessage answer reaches this proxy, so stamping
        # waits for them (see stamp_senders).
        self.sending = 0
        self.sends_done = threading.Condition()

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.calls = []
            self.requests = []
            self.seq = 0
            self.attempts = {}
            self.seed, self.rules, self.injected = 0, [], []
            self.principals, self.senders = {}, {}

    def set_principals(self, document) -> None:
        if not isinstance(document, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in document.items()):
            raise ValueError("principals must be an object of access key -> principal id")
        with self.lock:
            self.principals.update(document)

    def begin_send(self) -> None:
        with self.sends_done:
            self.sending += 1

    def end_send(self) -> None:
        with self.sends_done:
            self.sending -= 1
            self.sends_done.notify_all()

    def sent(self, access_key: str | None, answer: bytes) -> None:
        """Remembers which key sent the message a SendMessage answer names."""
        try:
            message_id = json.loads(answer).get("MessageId")
        except ValueError:
            return
        if message_id and access_key:
            with self.lock:
                self.senders[message_id] = access_key

    def stamp_senders(self, answer: bytes) -> bytes:
        """A ReceiveMessage answer with each message's SenderId as SQS would stamp it.

        A message received may have been sent through this proxy by a SendMessage whose answer
        (naming the message id) is still on its way back: wait for the sends in flight, at most
        a few seconds, so the message's sender is known."""
        try:
            document = json.loads(answer)
        except ValueError:
            return answer
        if document.get("Messages"):
            with self.sends_done:
                self.sends_done.wait_for(lambda: self.sending == 0, timeout=5.0)
        changed = False
        with self.lock:
            for message in document.get("Messages") or []:
                key = self.senders.get(message.get("MessageId"))
                principal = self.principals.get(key) if key else None
                if principal:
                    message.setdefault("Attributes", {})["SenderId"] = principal
                    changed = True
        return json.dumps(document).encode() if changed else answer

    def set_faults(self, document) -> None:
        seed, rules = validate_rules(document)
        with self.lock:
            self.seed, self.rules, self.injected = seed, rules, [0] * len(rules)

    def faults(self) -> dict:
        with self.lock:
            return {"seed": self.seed, "rules": [dict(r) for r in self.rules],
                    "injected": list(self.injected)}

    def snapshot(self, since: int | None = None) -> list[dict]:
        with self.lock:
            calls = [dict(c, target_ids=list(c["target_ids"])) for c in self.calls
                     if since is None or c["seq"] > since]
        return sorted(calls, key=lambda c: c["seq"])

    def stats(self) -> dict:
        by_operation: dict[str, int] = {}
        faults: dict[str, int] = {}
        calls = self.snapshot()
        for call in calls:
            name = f"{call['service']}:{call['operation']}"
            by_operation[name] = by_operation.get(name, 0) + 1
            if call["fault"]:
                faults[call["fault"]] = faults.get(call["fault"], 0) + 1
        return {"calls": len(calls), "by_operation": by_operation, "faults": faults}

    # -- per request -------------------------------------------------------------------------

    def admit(self, method: str, target: str, info: Classified, body: bytes) -> tuple[dict, dict | None]:
        """Record a new call and decide its fate (the matching rule that fired, or None)."""
        canonical = canonical_request(method, target, body)
        key = (info.service, info.operation, canonical)
        with self.lock:
            self.seq += 1
            attempt = self.attempts.get(key, 0)
            self.attempts[key] = attempt + 1
            fired = None
            for index, rule in enumerate(self.rules):
                if not rule_matches(rule, info):
                    continue
                if rule["max"] is not None and self.injected[index] >= rule["max"]:
                    continue
                if die(self.seed, index, info, attempt, canonical) < rule["rate"]:
                    self.injected[index] += 1
                    fired = rule
                    break
            call = {
                "seq": self.seq,
                "t": round(time.monotonic() - self.started, 6),
                "method": method,
                "path": target,
                "service": info.service,
                "region": info.region,
                "access_key": info.access_key,
                "operation": info.operation,
                "mutating": info.mutating,
                "dry_run": info.dry_run,
                "target_ids": list(info.target_ids),
                "attempt": attempt,
                "status": None,
                "upstream_status": None,
                "fault": fired["fault"] if fired else None,
                "ms": None,
                "error": None,
            }
            self.calls.append(call)
        return call, fired

    def keep(self, seq: int, method: str, target: str, headers, body: bytes) -> None:
        with self.lock:
            self.requests.append({"seq": seq, "method": method, "path": target,
                                  "headers": headers,
                                  "body": base64.b64encode(body).decode()})

    def kept(self) -> list[dict]:
        with self.lock:
            return sorted(self.requests, key=lambda r: r["seq"])

    def complete(self, call: dict, started: float, **fields) -> None:
        with self.lock:
            call.update(fields)
            call["ms"] = round((time.monotonic() - started) * 1000, 3)
        if self.verbose:
            log(f"#{call['seq']} {call['service']}:{call['operation']} -> {call['status']}"
                f" fault={call['fault']} {call['ms']}ms")


def log(line: str) -> None:
    print(f"fault_proxy: {line}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


class BadRequest(Exception):
    """The client's request cannot be read; answered with 400 and the connection closed."""


class Upstream:
    """One keep-alive connection to the upstream, owned by one client connection's thread."""

    def __init__(self, proxy: Proxy):
        self.proxy = proxy
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                self.proxy.upstream_host, self.proxy.upstream_port,
                timeout=self.proxy.upstream_timeout)
            self.connection.connect()
            self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def send(self, method, target, headers, body) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """(status, reason, headers, body); retries once on a fresh connection, then raises."""
        try:
            return self._send_once(method, target, headers, body)
        except TimeoutError:
            raise  # the upstream got the request and is slow; resending could apply it twice
        except (OSError, http.client.HTTPException):
            # Most often the upstream closed an idle keep-alive connection under us.
            return self._send_once(method, target, headers, body)

    def _send_once(self, method, target, headers, body):
        connection = self._connect()
        try:
            # Host and Accept-Encoding go through exactly as the client sent them.
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders(body if body else None)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        except BaseException:
            self.close()
            raise


def connection_tokens(headers) -> set[str]:
    """Header names listed in Connection are hop-by-hop for this message too."""
    tokens = set()
    for value in headers.get_all("Connection") or []:
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def forwardable(items, drop: frozenset, extra: set[str]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items
            if k.lower() not in drop and k.lower() not in extra and not k.lower().startswith("proxy-")]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_version = "fault_proxy"

    @property
    def proxy(self) -> Proxy:
        return self.server.proxy

    def setup(self):
        super().setup()
        # Headers and body go out in one write below; without Nagle nothing waits for an ACK
        # (Nagle with delayed ACKs would add tens of milliseconds to every call).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.upstream = Upstream(self.proxy)

    def finish(self):
        try:
            super().finish()
        finally:
            self.upstream.close()

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        if self.proxy.verbose:
            log(f"{self.address_string()} {format % args}")

    # Every method goes through the same path.
    def do_GET(self):
        self.serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def serve(self):
        self.responded = False
        try:
            self.route()
        except BadRequest as error:
            self.close_connection = True
            if not self.responded:
                self.respond(400, [("Content-Type", "text/plain")], f"bad request: {error}".encode())
        except (BrokenPipeError, ConnectionResetError) as error:
            self.close_connection = True
            if self.proxy.verbose:
                log(f"client went away: {error}")
        except Exception as error:  # one bad request must never kill the server
            log(f"{self.command} {self.path}: {type(error).__name__}: {error}")
            self.close_connection = True
            if not self.responded:
                try:
                    text = f"fault_proxy: {type(error).__name__}: {error}".encode()
                    self.respond(502, [("Content-Type", "text/plain")], text)
                except OSError:
                    pass

    # -- request plumbing --------------------------------------------------------------------

    def target(self) -> str:
        # Absolute-form targets (forward-proxy style) are reduced to origin-form.
        if self.path.startswith(("http://", "https://")):
            parts = urllib.parse.urlsplit(self.path)
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self.path

    def read_body(self) -> bytes:
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if encoding:
            if encoding.split(",")[-1].strip() != "chunked":
                raise BadRequest(f"unsupported Transfer-Encoding {encoding!r}")
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
            if size < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(f"bad Content-Length {length!r}") from None
        body = self.rfile.read(size)
        if len(body) != size:
            raise BadRequest("body shorter than Content-Length")
        return body

    def read_chunked(self) -> bytes:
        # HTTP framing is removed here and the body re-sent with Content-Length; any
        # Content-Encoding inside it (e.g. S3 aws-chunked) is forwarded untouched.
        chunks = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise BadRequest("connection closed inside a chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                break
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("truncated chunk")
            chunks.append(data)
        while True:  # trailers: read and drop
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
        return b"".join(chunks)

    def respond(self, status, headers, body: bytes, reason=None, keep_length=False):
        """Write one response. keep_length: headers already carry the right Content-Length."""
        self.responded = True
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        self.send_response_only(status, reason or None)
        for name, value in headers:
            self.send_header(name, value)
        if not keep_length and not (status in (204, 304) or 100 <= status < 200):
            self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # One write for head and body (end_headers would write the head alone).
        self._headers_buffer.append(b"\r\n")
        if not no_body:
            self._headers_buffer.append(body)
        self.flush_headers()
        self.wfile.flush()

    def respond_json(self, status, document):
        body = json.dumps(document).encode()
        self.respond(status, [("Content-Type", "application/json"),
                              ("Date", self.date_time_string())], body)

    def forward(self, target, body) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = forwardable(self.headers.items(), REQUEST_DROP, connection_tokens(self.headers))
        sent_length = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        if body or sent_length:
            headers.append(("Content-Length", str(len(body))))
        return self.upstream.send(self.command, target, headers, body)

    def relay(self, status, reason, headers, body) -> None:
        """Pass an upstream response to the client, re-framed with our own Content-Length."""
        bodyless = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        extra = {n.strip().lower() for k, v in headers if k.lower() == "connection"
                 for n in v.split(",")}
        if bodyless:
            # HEAD keeps the upstream Content-Length: for S3 HeadObject it *is* the object size.
            kept = forwardable(headers, HOP_BY_HOP, extra)
        else:
            kept = forwardable(headers, RESPONSE_DROP, extra)
        self.respond(status, kept, body, reason=reason, keep_length=bodyless)

    # -- routing -----------------------------------------------------------------------------

    def route(self):
        target = self.target()
        body = self.read_body()
        if target.startswith(CONTROL_PREFIX):
            self.control(target, body)
        elif target.startswith(MOTO_API_PREFIX):
            self.relay_unrecorded(target, body)
        else:
            self.proxied(target, body)

    def relay_unrecorded(self, target, body):
        try:
            self.relay(*self.forward(target, body))
        except (OSError, http.client.HTTPException) as error:
            self.respond(502, [("Content-Type", "text/plain")], f"upstream: {error}".encode())

    def control(self, target, body):
        path, _, query = target.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        route = (self.command, path[len(CONTROL_PREFIX):].rstrip("/"))
        if route == ("GET", "calls"):
            since = params.get("since")
            try:
                since_seq = int(since) if since is not None else None
            except ValueError:
                return self.respond_json(400, {"error": f"since must be an integer, got {since!r}"})
            return self.respond_json(200, self.proxy.snapshot(since_seq))
        if route == ("GET", "requests"):
            return self.respond_json(200, self.proxy.kept())
        if route == ("GET", "stats"):
            return self.respond_json(200, self.proxy.stats())
        if route == ("GET", "faults"):
            return self.respond_json(200, self.proxy.faults())
        if route == ("POST", "reset"):
            self.proxy.reset()
            return self.respond_json(200, {})
        if route == ("POST", "principals"):
            try:
                self.proxy.set_principals(json.loads(body or b"{}"))
            except ValueError as error:
                return self.respond_json(400, {"error": str(error)})
            return self.respond_json(200, {})
        if route == ("POST", "faults"):
            try:
                self.proxy.set_faults(json.loads(body or b"{}"))
            except (ValueError, RuleError) as error:  # JSONDecodeError is a ValueError
                return self.respond_json(400, {"error": str(error)})
            return self.respond_json(200, {})
        return self.respond_json(404, {"error": f"no control route {self.command} {path}"})

    def proxied(self, target, body):
        started = time.monotonic()
        info = classify(self.command, target, self.headers, body)
        call, rule = self.proxy.admit(self.command, target, info, body)
        if self.proxy.keep_requests:
            self.proxy.keep(call["seq"], self.command, target,
                            forwardable(self.headers.items(), REQUEST_DROP,
                                        connection_tokens(self.headers)), body)
        fault = rule["fault"] if rule else None
        if rule and rule["delay_ms"]:
            time.sleep(rule["delay_ms"] / 1000)
        if fault == "hang":
            self.hang(rule["hang_s"])
            return self.proxy.complete(call, started)
        # Each branch completes the record *before* answering: a test reads /__proxy/calls as
        # soon as its SDK call returns and must find the final status there.
        if fault in ("throttle", "error500"):
            status, headers, data = error_response(fault, info)
            self.proxy.complete(call, started, status=status)
            return self.respond(status, headers, data)

        sending = (info.service, info.operation) == ("sqs", "SendMessage")
        if sending:
            self.proxy.begin_send()
        try:
            self.forward_and_answer(target, body, info, call, started, fault)
        finally:
            if sending:
                self.proxy.end_send()

    def forward_and_answer(self, target, body, info, call, started, fault):
        upstream_status, error = None, None
        try:
            response = self.forward(target, body)
            upstream_status = response[0]
        except (OSError, http.client.HTTPException) as failure:
            response, error = None, f"upstream: {type(failure).__name__}: {failure}"
        done = dict(upstream_status=upstream_status, error=error)
        # The agent runs a command moto accepted even when its answer is then lost.
        if response and response[0] == 200 and (info.service, info.operation) == ("ssm", "SendCommand"):
            simulate_agent_uploads(body, response[3])
        if fault == "lost":
            # The upstream applied the change; only the answer goes missing.
            status, headers, data = error_response("error500", info)
            self.proxy.complete(call, started, status=status, **done)
            self.respond(status, headers, data)
        elif response is None:
            self.proxy.complete(call, started, status=502, **done)
            self.respond(502, [("Content-Type", "text/plain")], error.encode())
        else:
            if info.service == "ssm" and info.operation == "GetCommandInvocation" \
                    and response[0] == 200:
                response = (*response[:3], agent_invocation(body, response[3]))
            if info.service == "s3" and info.operation == "ListParts" and response[0] == 200:
                response = (*response[:3], list_parts_result(response[3]))
            if info.service == "sqs" and response[0] == 200:
                if info.operation == "SendMessage":
                    self.proxy.sent(info.access_key, response[3])
                elif info.operation == "ReceiveMessage":
                    response = (*response[:3], self.proxy.stamp_senders(response[3]))
            self.proxy.complete(call, started, status=response[0], **done)
            self.relay(*response)

    def hang(self, seconds: float) -> None:
        """Never answer: wait, give up early if the client hangs up, then drop the connection."""
        self.close_connection = True
        sock = self.connection
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            step = min(0.1, left)
            readable, _, _ = select.select([sock], [], [], step)
            if not readable:
                continue
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return  # client closed its end
            except OSError:
                return
            time.sleep(step)  # client sent more bytes; they stay unread, keep hanging


UPLOAD_BEGIN = "# firebreak: upload functions"
UPLOAD_END = "# firebreak: end of upload functions"
UPLOAD_CASE = re.compile(
    r"^\s*'((?:[^']|'\\'')*)'\) url='(?:[^']|'\\'')*';(?: upload='[^']*'; part_mib=(\d+);)?",
    re.MULTILINE)
MIB = 1024 * 1024

# What the stand-in agent printed, by (command id, instance): (exit code, stdout, stderr).
AGENT_OUTPUT: dict[tuple[str, str], tuple[int, str, str]] = {}
AGENT_LOCK = threading.Lock()


def unquote(word: str) -> str:
    return word.replace("'\\''", "'")


def simulate_agent_uploads(body: bytes, answer: bytes) -> int:
    """Runs firebreak's own upload functions, as the instance would, for each upload a
    SendCommand carries; keeps their output for GetCommandInvocation. Returns how many ran."""
    try:
        document = json.loads(body or b"{}")
        command_id = json.loads(answer or b"{}")["Command"]["CommandId"]
    except (ValueError, KeyError, TypeError):
        return 0
    text = "\n".join((document.get("Parameters") or {}).get("commands") or [])
    if UPLOAD_BEGIN not in text or UPLOAD_END not in text:
        return 0
    functions = text[text.index(UPLOAD_BEGIN):text.index(UPLOAD_END)]
    instance = (document.get("InstanceIds") or ["unknown"])[0]
    code, stdout, stderr = 0, [], []
    with tempfile.TemporaryDirectory(prefix="agent-") as work:
        uploads = [(unquote(m[1]), int(m[2] or 0)) for m in UPLOAD_CASE.finditer(functions)]
        for name, part_mib in uploads:
            line = f"simulated {name} from {instance}\n".encode()
            # A multipart artifact spans two and a half parts: two full parts and a short last.
            size = part_mib * MIB * 5 // 2 if part_mib else len(line)
            path = os.path.join(work, name)
            with open(path, "wb") as artifact:
                artifact.write((line * (size // len(line) + 1))[:size])
            try:
                ran = subprocess.run(
                    ["bash", "-c", functions + '\nfirebreak_upload "$0" "$1"', name, path],
                    capture_output=True, text=True, timeout=300, cwd=work)
            except (OSError, subprocess.TimeoutExpired) as failure:
                ran = subprocess.CompletedProcess([], 127, "", f"agent stand-in: {failure}\n")
            if ran.returncode:
                log(f"simulated upload of {name} failed ({ran.returncode}): {ran.stderr.strip()}")
            code = code or ran.returncode
            stdout.append(ran.stdout)
            stderr.append(ran.stderr)
    with AGENT_LOCK:
        AGENT_OUTPUT[(command_id, instance)] = (code, "".join(stdout), "".join(stderr))
    return len(uploads)


def list_parts_result(answer: bytes) -> bytes:
    """moto (5.2.5) names ListParts' root element ListPartsResponse; S3 and the SDKs that
    check it say ListPartsResult. Only the root's name is changed."""
    return answer.replace(b"<ListPartsResponse", b"<ListPartsResult", 1) \
        .replace(b"</ListPartsResponse>", b"</ListPartsResult>", 1)


def agent_invocation(body: bytes, answer: bytes) -> bytes:
    """A GetCommandInvocation answer with what the stand-in agent printed (and its failure)."""
    try:
        asked = json.loads(body or b"{}")
        invocation = json.loads(answer)
    except ValueError:
        return answer
    with AGENT_LOCK:
        ran = AGENT_OUTPUT.get((asked.get("CommandId"), asked.get("InstanceId")))
    if ran is None:
        return answer
    code, stdout, stderr = ran
    invocation["StandardOutputContent"] = (invocation.get("StandardOutputContent") or "") + stdout
    invocation["StandardErrorContent"] = (invocation.get("StandardErrorContent") or "") + stderr
    if code:
        invocation.update(Status="Failed", StatusDetails="Failed", ResponseCode=code)
    return json.dumps(invocation).encode()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the SDK opens many connections at once under concurrency

    def __init__(self, address, proxy: Proxy):
        self.proxy = proxy
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        # Errors outside our handler (e.g. a client resetting mid-request line): one line.
        error = sys.exc_info()[1]
        if self.proxy.verbose or not isinstance(error, (ConnectionError, TimeoutError)):
            log(f"connection from {client_address}: {type(error).__name__}: {error}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_parent(pid: int) -> None:
    """Exit (via SIGTERM to ourselves) once the test process that started us is gone."""
    original_parent = os.getppid()

    def watch():
        while True:
            time.sleep(1)
            orphaned = pid == original_parent and os.getppid() != original_parent
            if orphaned or not pid_alive(pid):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT of moto")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument("--upstream-timeout", type=float, default=300.0,
                        help="seconds to wait for the upstream (default 300)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--keep-requests", action="store_true",
                        help="keep each request as sent, for GET /__proxy/requests")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        proxy = Proxy(args.upstream, args.upstream_timeout, args.verbose, args.keep_requests)
    except ValueError as error:
        log(str(error))
        return 2
    server = Server((args.host, args.port), proxy)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        watch_parent(args.parent_pid)
    host, port = server.server_address[:2]
    print(f"listening http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
