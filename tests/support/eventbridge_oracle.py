#!/usr/bin/env python3
"""moto's EventBridge as an oracle for firebreak's event-pattern matcher.

stdin:  {"endpoint": URL, "patterns": [pattern, ...], "events": [event, ...]}
stdout: {"delivered": [[event index, ...] per pattern], "as_sent": [event as EventBridge
        built it, per event index]}

Each pattern becomes a rule on the default bus with its own SQS queue as target; one more
rule matches everything, so the test sees every event exactly as EventBridge built it (its
envelope: id, time, account, region). Each event is sent with PutEvents (source, detail-type,
resources and detail from the generated event; `detail.oracle-index` says which it was).
"""

import json
import sys
import uuid

import boto3


def main() -> None:
    request = json.load(sys.stdin)
    kwargs = dict(endpoint_url=request["endpoint"], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
    events = boto3.client("events", **kwargs)
    sqs = boto3.client("sqs", **kwargs)
    run = uuid.uuid4().hex[:8]
    # The last rule sees every event: PutEvents always sets a source.
    patterns = request["patterns"] + [{"source": [{"prefix": ""}]}]
    queues = []
    for i, pattern in enumerate(patterns):
        name = f"oracle-{run}-{i}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
        queues.append(url)
    for index, event in enumerate(request["events"]):
        detail = dict(event.get("detail") or {})
        detail["oracle-index"] = index
        entry = {"Source": event["source"], "DetailType": event["detail-type"],
                 "Detail": json.dumps(detail)}
        if event.get("resources"):
            entry["Resources"] = event["resources"]
        answer = events.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise SystemExit(f"PutEvents refused event {index}: {answer}")
    delivered = []
    as_sent = {}
    for url in queues:
        seen = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                body = json.loads(message["Body"])
                index = body["detail"]["oracle-index"]
                seen.append(index)
                as_sent[index] = body
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)])
        delivered.append(sorted(seen))
    missing = [i for i in range(len(request["events"])) if i not in as_sent]
    if missing:
        raise SystemExit(f"events never delivered to the catch-all rule: {missing}")
    json.dump({"delivered": delivered[:-1],
               "as_sent": [as_sent[i] for i in range(len(request["events"]))]}, sys.stdout)


if __name__ == "__main__":
    main()
