#!/usr/bin/env python3
"""firebreak's outbreak benchmark (started by scripts/bench, which builds firebreak and starts
moto). For each fleet size N: seed N instances over --vpcs VPCs straight into moto, then run
each scenario live (--yes) through the counting proxy (tests/support/fault_proxy.py) and print:

  wall s        the firebreak process, start to exit
  floor s       firebreak's own recorded requests replayed as sent by a bare program at the
                runbook's concurrency (see floor()), and wall / floor
  calls         AWS requests at the wire (the proxy's count, retries included), and per instance
  last iso s    run start to the last instance's isolation, from the journal
  cpu s, us/call  firebreak's user+system CPU, and per wire call
  rss MiB       firebreak's peak resident memory
  journal       bytes, records and fsyncs (from the run's JSON outcome)
  verified      the end state read back from moto: every interface of every instance in its
                VPC's isolation group and in no original group; one snapshot per volume

then the calls by operation, the start-up time of `validate` and `plan`, and what is not
measured yet. Figures are for this machine and this emulator: moto answers one request at a
time, which bounds every tool run against it.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import glob
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"

SCENARIOS = [
    # key (--scenarios), name, runbook, extra parameters
    # key (--scenarios), name, runbook, extra parameters, the runbook's concurrency (the
    # floor's replay uses the same; None: no floor — the fleet runbook waits for snapshots and
    # stopped instances, which a replay of its calls would not, so its floor says nothing)
    ("fleet", "fleet runbook", "runbooks/ec2-fleet-containment.yaml", [], None),
    ("isolate-only", "tag+isolate+snapshot, isolate-only", "benches/runbooks/tag-isolate-snapshot.yaml",
     ["-p", "strategy=isolate-only"], 50),
    ("untrack-then-isolate", "tag+isolate+snapshot, untrack-then-isolate", "benches/runbooks/tag-isolate-snapshot.yaml",
     ["-p", "strategy=untrack-then-isolate"], 50),
]


def post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=30).read()


def get_json(url: str):
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


def start_proxy(moto: str) -> tuple[subprocess.Popen, str]:
    proxy = subprocess.Popen(
        [str(PYTHON), str(ROOT / "tests/support/fault_proxy.py"), "--upstream", moto,
         "--port", "0", "--parent-pid", str(os.getpid()), "--keep-requests"],
        stdout=subprocess.PIPE, text=True)
    line = proxy.stdout.readline().strip()
    if not line.startswith("listening "):
        raise SystemExit(f"the counting proxy did not start: {line!r}")
    return proxy, line.split(" ", 1)[1]


def seed(moto: str, instances: int, vpcs: int) -> dict:
    post(f"{moto}/moto-api/reset")
    out = subprocess.run(
        [str(PYTHON), str(ROOT / "scripts/seed-fleet.py"), "--endpoint", moto,
         "--instances", str(instances), "--vpcs", str(vpcs)],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def aws_env(endpoint: str, journal_dir: str) -> dict:
    env = dict(os.environ)
    env.update({
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        "FIREBREAK_JOURNAL_DIR": journal_dir,
    })
    return env


def run_measured(argv: list[str], env: dict) -> tuple[int, float, float, int, str]:
    """Exit code, wall seconds, CPU seconds, peak RSS KiB and stdout of one process."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode()
    return child.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stdout


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def journal_figures(journal_dir: str) -> dict:
    files = glob.glob(os.path.join(journal_dir, "*.jsonl"))
    if not files:
        return {"bytes": 0, "records": 0, "last_isolation": None}
    path = files[0]
    start = None
    actions = {}
    isolated = []
    records = 0
    with open(path) as journal:
        for line in journal:
            record = json.loads(line)
            records += 1
            kind = record["type"]
            if kind == "run_started":
                start = ts(record["ts"])
            elif kind == "item_started":
                actions[(record["step"], record.get("item_index"))] = record.get("action")
            elif kind == "item_succeeded":
                if actions.get((record["step"], record.get("item_index"))) == "ec2.isolate_instance":
                    isolated.append(ts(record["ts"]))
    last = max(isolated) - start if isolated and start else None
    return {"bytes": os.path.getsize(path), "records": records, "last_isolation": last}


def verify(moto: str, fleet: dict, case_tagged: bool = True) -> str:
    """The end state, read from moto directly (not through the proxy: not counted)."""
    import boto3
    from botocore.config import Config
    # moto looks at every tag of the account for each tag filter of each snapshot it lists:
    # at N = 1000 one listing takes it minutes, so no tag filter is sent (owner only, tags
    # checked here) and the client waits as long as moto needs.
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(read_timeout=1800, retries={"max_attempts": 1}))
    problems = []
    isolation = {}
    for group in ec2.describe_security_groups(
            Filters=[{"Name": "tag:firebreak:role", "Values": ["isolation"]}])["SecurityGroups"]:
        isolation[group["VpcId"]] = group["GroupId"]
    for vpc in {i["vpc_id"] for i in fleet["instances"]}:
        if vpc not in isolation:
            problems.append(f"no isolation group in {vpc}")
            continue
        members = set()
        for page in ec2.get_paginator("describe_network_interfaces").paginate(
                Filters=[{"Name": "group-id", "Values": [isolation[vpc]]}]):
            members.update(e["NetworkInterfaceId"] for e in page["NetworkInterfaces"])
        others = set()
        other_groups = [g["GroupId"] for g in ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
            if g["GroupId"] != isolation[vpc] and not any(
                t["Key"] == "firebreak:managed" for t in g.get("Tags", []))]
        if other_groups:
            for page in ec2.get_paginator("describe_network_interfaces").paginate(
                    Filters=[{"Name": "group-id", "Values": other_groups}]):
                others.update(e["NetworkInterfaceId"] for e in page["NetworkInterfaces"])
        for instance in (i for i in fleet["instances"] if i["vpc_id"] == vpc):
            for eni in instance["network_interface_ids"]:
                if eni not in members or eni in others:
                    problems.append(f"{eni} not isolated")
    volumes = {v for i in fleet["instances"] for v in i["volume_ids"]}
    snapshots = Counter()
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
        snapshots.update(
            s["VolumeId"] for s in page["Snapshots"]
            if not case_tagged or any(t["Key"] == "firebreak:case" for t in s.get("Tags", [])))
    missing = [v for v in volumes if snapshots[v] == 0]
    twice = [v for v in volumes if snapshots[v] > 1]
    if missing:
        problems.append(f"{len(missing)} volumes without a snapshot")
    if twice:
        problems.append(f"{len(twice)} volumes snapshotted more than once")
    return "yes" if not problems else f"NO: {problems[0]} (+{len(problems) - 1} more)"


def floor(proxy_url: str, requests: list[dict], concurrency: int) -> float:
    """The floor: firebreak's own requests, exactly as it sent them (recorded by the proxy),
    replayed in their order by a bare program — no engine, no journal, no templates, no SDK
    retries or waits — at most `concurrency` at once through the same proxy. Replayed against
    the state firebreak's run left (moto cannot be rewound), so creations answer "duplicate" and
    look-ups see firebreak's snapshots too: close to, not exactly, the same work. Seconds."""
    parts = urllib.parse.urlsplit(proxy_url)
    local = threading.local()

    def send(request: dict) -> None:
        body = base64.b64decode(request["body"])
        headers = {k: v for k, v in request["headers"] if k.lower() != "content-length"}
        headers["Content-Length"] = str(len(body))
        for _ in range(2):
            connection = getattr(local, "connection", None)
            if connection is None:
                connection = local.connection = http.client.HTTPConnection(
                    parts.hostname, parts.port, timeout=600)
            try:
                connection.request(request["method"], request["path"], body=body, headers=headers)
                connection.getresponse().read()
                return
            except (OSError, http.client.HTTPException):
                connection.close()
                local.connection = None

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(send, requests))
    return time.monotonic() - started


def scenario(args, proxy_url: str, name: str, runbook: str, extra: list[str], n: int,
             concurrency: int) -> dict:
    fleet = seed(args.moto, n, args.vpcs)
    ids = ",".join(i["instance_id"] for i in fleet["instances"])
    post(f"{proxy_url}/__proxy/reset")
    with tempfile.TemporaryDirectory() as journal_dir:
        argv = [args.firebreak, "run", str(ROOT / runbook), "-p", f"instance_ids={ids}", *extra,
                "--yes", "--max-targets", str(n), "--output", "json"]
        code, wall, cpu, rss_kib, stdout = run_measured(argv, aws_env(proxy_url, journal_dir))
        stats = get_json(f"{proxy_url}/__proxy/stats")
        figures = journal_figures(journal_dir)
    # The end state first: the floor's replay makes more of what the run made.
    verified = verify(args.moto, fleet)
    floor_s = None
    if concurrency and not args.no_floor:
        requests = get_json(f"{proxy_url}/__proxy/requests")
        post(f"{proxy_url}/__proxy/reset")
        floor_s = floor(proxy_url, requests, concurrency)
    post(f"{proxy_url}/__proxy/reset")
    try:
        outcome = json.loads(stdout)
    except json.JSONDecodeError:
        outcome = {}
    calls = stats["calls"]
    return {
        "name": name, "n": n, "exit": code, "wall": wall, "calls": calls,
        "per_instance": calls / n, "last_isolation": figures["last_isolation"], "cpu": cpu,
        "us_per_call": cpu / calls * 1e6 if calls else 0, "rss_mib": rss_kib / 1024,
        "journal_bytes": figures["bytes"], "records": figures["records"],
        "syncs": outcome.get("journal_syncs"), "verified": verified,
        "by_operation": stats["by_operation"], "floor": floor_s,
    }


def custodian(args, proxy_url: str, n: int) -> dict:
    """Cloud Custodian doing tag + isolate + snapshot on the same fleet: one policy per VPC
    (its isolation group must be in the instance's VPC), each filtered to the fleet's ids; the
    isolation groups are made beforehand, straight at moto (not counted)."""
    import boto3
    fleet = seed(args.moto, n, args.vpcs)
    ec2 = boto3.client("ec2", endpoint_url=args.moto, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    policies = []
    for vpc in sorted({i["vpc_id"] for i in fleet["instances"]}):
        group = ec2.create_security_group(GroupName="c7n-isolation", Description="no rules",
                                          VpcId=vpc)["GroupId"]
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ec2.create_tags(Resources=[group], Tags=[{"Key": "firebreak:role", "Value": "isolation"}])
        ids = [i["instance_id"] for i in fleet["instances"] if i["vpc_id"] == vpc]
        policies.append({
            "name": f"contain-{vpc}", "resource": "aws.ec2",
            "filters": [{"type": "value", "key": "InstanceId", "op": "in", "value": ids}],
            "actions": [
                {"type": "tag", "key": "firebreak:status", "value": "contained"},
                {"type": "modify-security-groups", "isolation-group": group, "remove": "all"},
                {"type": "snapshot"},
            ],
        })
    post(f"{proxy_url}/__proxy/reset")
    with tempfile.TemporaryDirectory() as work:
        policy = Path(work) / "policy.json"
        policy.write_text(json.dumps({"policies": policies}))
        env = aws_env(proxy_url, work)
        env["AWS_DEFAULT_REGION"] = "us-east-1"
        argv = [args.custodian, "run", "-s", str(Path(work) / "out"), "--cache-period", "0",
                str(policy)]
        code, wall, cpu, rss_kib, _ = run_measured(argv, env)
        stats = get_json(f"{proxy_url}/__proxy/stats")
    calls = stats["calls"]
    return {
        "name": "Cloud Custodian 0.9.53, tag+isolate+snapshot", "n": n, "exit": code,
        "wall": wall, "calls": calls, "per_instance": calls / n, "last_isolation": None,
        "cpu": cpu, "us_per_call": cpu / calls * 1e6 if calls else 0,
        "rss_mib": rss_kib / 1024, "journal_bytes": 0, "records": 0, "syncs": None,
        "verified": verify(args.moto, fleet, case_tagged=False),
        "by_operation": stats["by_operation"], "floor": None,
    }


def startup(args) -> list[tuple[str, float]]:
    runbooks = sorted(glob.glob(str(ROOT / "runbooks" / "*.yaml")))
    commands = [
        (f"validate (all {len(runbooks)} shipped runbooks)", [args.firebreak, "validate", *runbooks]),
        ("plan ec2-instance-compromise", [args.firebreak, "plan",
                                          str(ROOT / "runbooks/ec2-instance-compromise.yaml"),
                                          "-p", "instance_id=i-0123456789abcdef0"]),
    ]
    results = []
    for name, argv in commands:
        times = []
        for _ in range(args.repeat):
            started = time.monotonic()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times.append(time.monotonic() - started)
        results.append((name, statistics.median(times) * 1000))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moto", required=True, help="moto's endpoint (scripts/bench starts it)")
    parser.add_argument("--firebreak", required=True, help="the firebreak binary")
    parser.add_argument("--build", default="release", help="the cargo profile, for the heading")
    parser.add_argument("--instances", default="10,100", help="fleet sizes, comma-separated")
    parser.add_argument("--vpcs", type=int, default=3)
    parser.add_argument("--scenarios", default="fleet,isolate-only,untrack-then-isolate,custodian",
                        help="which of fleet, isolate-only, untrack-then-isolate, custodian")
    parser.add_argument("--custodian", help="the custodian command (scripts/bench installs it)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each start-up command")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the floor's replay (at N = 1000 moto takes as long again)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.instances.split(",") if n]
    proxy, proxy_url = start_proxy(args.moto)
    try:
        print(f"# firebreak outbreak benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
              f"{os.cpu_count()} CPUs, {args.build} build, moto through the counting proxy, "
              f"{args.vpcs} VPCs, every 5th instance with a second interface, 2 volumes each")
        print()
        header = ("| scenario | N | exit | wall s | floor s | ×floor | calls | calls/inst | "
                  "last iso s | cpu s | "
                  "µs/call | rss MiB | journal KiB | records | syncs | verified |")
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        rows = []
        for n in sizes:
            wanted = args.scenarios.split(",")
            runs = [(lambda nm=name, rb=runbook, ex=extra, c=concurrency:
                     scenario(args, proxy_url, nm, rb, ex, n, c))
                    for key, name, runbook, extra, concurrency in SCENARIOS if key in wanted]
            if "custodian" in wanted and args.custodian:
                runs.append(lambda: custodian(args, proxy_url, n))
            for run in runs:
                row = run()
                rows.append(row)
                last = f"{row['last_isolation']:.1f}" if row["last_isolation"] is not None else "-"
                floor_s = f"{row['floor']:.1f}" if row["floor"] else "-"
                ratio = f"{row['wall'] / row['floor']:.2f}" if row["floor"] else "-"
                print(f"| {row['name']} | {n} | {row['exit']} | {row['wall']:.1f} | {floor_s} | "
                      f"{ratio} | {row['calls']} | "
                      f"{row['per_instance']:.2f} | {last} | {row['cpu']:.2f} | "
                      f"{row['us_per_call']:.0f} | {row['rss_mib']:.1f} | "
                      f"{row['journal_bytes'] / 1024:.0f} | {row['records']} | "
                      f"{row['syncs'] if row['syncs'] is not None else '-'} | {row['verified']} |",
                      flush=True)
        print()
        for row in rows:
            ops = sorted(row["by_operation"].items(), key=lambda kv: -kv[1])
            listed = ", ".join(f"{op.split(':', 1)[1]} {count / row['n']:.2f}" for op, count in ops)
            print(f"- {row['name']}, N={row['n']} (calls per instance): {listed}")
        print()
        for name, ms in startup(args):
            print(f"- start-up, {name}: {ms:.0f} ms (median of {args.repeat})")
        print()
        with tempfile.TemporaryDirectory() as scratch:
            # The disk the runs' journals were on; this build's journal, not the debug one.
            journal = subprocess.run([args.firebreak, "journal", "bench", "--dir", scratch],
                                     capture_output=True, text=True, check=False)
        print(f"- journal ({args.build} build): `firebreak journal bench`:")
        for line in journal.stdout.splitlines():
            print(f"      {line}")
        print()
        print("The floor replays firebreak's recorded requests as sent (a bare HTTP program, not "
              "an SDK: the SDK cannot be driven from a wire log) against the state the run left; "
              "the fleet runbook has no floor: it waits for snapshots and stopped instances.")
    finally:
        proxy.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
