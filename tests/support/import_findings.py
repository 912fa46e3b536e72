"""Puts an event's Security Hub findings into moto's Security Hub, as the service holds them
before it emits the event (`BatchImportFindings`, in the event's region), so a test can dispatch
the event and firebreak can read the finding back. Straight to moto, not through the counting
proxy: this is the world, not firebreak's calls.

    import_findings.py --endpoint URL [--set Workflow.Status=RESOLVED ...] < event.json

Each --set changes every finding before the import (a dotted path, a JSON or plain value).
Prints the number of findings imported.
"""

import argparse
import json
import sys

import boto3
from botocore.config import Config


def set_path(finding, path, value):
    node = finding
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    try:
        node[keys[-1]] = json.loads(value)
    except json.JSONDecodeError:
        node[keys[-1]] = value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    args = parser.parse_args()
    event = json.load(sys.stdin)
    findings = event["detail"]["findings"]
    for finding in findings:
        for assignment in args.set:
            path, _, value = assignment.partition("=")
            set_path(finding, path, value)
    client = boto3.client(
        "securityhub",
        endpoint_url=args.endpoint,
        region_name=event.get("region", "us-east-1"),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # The fixtures are events, which carry fields the import API does not declare.
        config=Config(parameter_validation=False),
    )
    answer = client.batch_import_findings(Findings=findings)
    if answer["FailedCount"]:
        sys.exit(f"import failed: {answer['FailedFindings']}")
    print(answer["SuccessCount"])


if __name__ == "__main__":
    main()
