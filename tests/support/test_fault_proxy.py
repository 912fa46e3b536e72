"""Self-test for fault_proxy.py.

Run from the repository root:

    python3 -m unittest tests/support/test_fault_proxy.py

The proxy runs as a subprocess in front of a small in-process fake upstream (http.server).
One extra test puts it in front of a real moto server when one is installed
(.venv/bin/moto_server, else moto_server on PATH); otherwise that test is reported as skipped.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import http.server
import importlib.util
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROXY_SCRIPT = HERE / "fault_proxy.py"
REPO = HERE.parent.parent

_spec = importlib.util.spec_from_file_location("fault_proxy", PROXY_SCRIPT)
fault_proxy = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fault_proxy", fault_proxy)  # dataclasses look their module up here
_spec.loader.exec_module(fault_proxy)


def sigv4(service: str, region: str = "us-east-1", key: str = "AKIDEXAMPLE") -> str:
    return (f"AWS4-HMAC-SHA256 Credential={key}/20240101/{region}/{service}/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# Fake upstream
# ----------------------------------------------------------------------------------------------


class FakeUpstream:
    """A keep-alive HTTP/1.1 server that records what it receives and answers 200."""

    HEAD_LENGTH = 1234  # what HEAD answers as Content-Length, as S3 HeadObject does

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with upstream.lock:
                    upstream.requests.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers.items()),
                                              "header_names": [k.lower() for k in self.headers],
                                              "body": body})
                if self.command == "HEAD":
                    self.send_response(200)
                    self.send_header("Content-Length", str(FakeUpstream.HEAD_LENGTH))
                    self.send_header("ETag", '"abc"')
                    self.end_headers()
                    return
                reply = b"<DescribeInstancesResponse/>"
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("X-Upstream", "fake")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def last(self) -> dict:
        with self.lock:
            return self.requests[-1]

    def clear(self):
        with self.lock:
            self.requests.clear()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------------------------
# Proxy process
# ----------------------------------------------------------------------------------------------


class ProxyProcess:
    def __init__(self, upstream: str, *extra: str):
        self.stderr = tempfile.TemporaryFile()
        self.stderr_text = ""
        self.process = subprocess.Popen(
            [sys.executable, str(PROXY_SCRIPT), "--upstream", upstream, "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=self.stderr)
        ready, _, _ = select.select([self.process.stdout], [], [], 15)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("listening http://127.0.0.1:"):
            errors = self.errors()
            self.stop()
            raise RuntimeError(f"proxy did not start: {line!r} {errors}")
        self.url = line.split(" ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def errors(self) -> str:
        """What the proxy wrote to stderr (kept after stop())."""
        if not self.stderr.closed:
            self.stderr.seek(0)
            self.stderr_text = self.stderr.read().decode(errors="replace")
        return self.stderr_text

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(10)
        finally:
            self.process.stdout.close()
            self.errors()
            self.stderr.close()

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=b"", headers=None, connection=None):
        own = connection is None
        connection = connection or self.connection()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            if own:
                connection.close()

    def control(self, method, path, document=None):
        body = json.dumps(document).encode() if document is not None else b""
        status, _, data = self.request(method, "/__proxy/" + path, body,
                                       {"Content-Type": "application/json"})
        return status, json.loads(data)

    def calls(self, since=None):
        path = "calls" if since is None else f"calls?since={since}"
        status, document = self.control("GET", path)
        assert status == 200, document
        return document

    def faults(self, rules, seed=42):
        status, document = self.control("POST", "faults", {"seed": seed, "rules": rules})
        assert status == 200, document


def ec2_query(action: str, extra: str = "", service: str = "ec2") -> tuple[bytes, dict]:
    body = f"Action={action}&Version=2016-11-15{extra}".encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               "Authorization": sigv4(service), "X-Amz-Date": "20240101T000000Z",
               "Host": "ec2.us-east-1.amazonaws.com"}
    return body, headers


# ----------------------------------------------------------------------------------------------
# Tests against the fake upstream
# ----------------------------------------------------------------------------------------------


class ProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = FakeUpstream()
        cls.proxy = ProxyProcess(cls.upstream.url, "--parent-pid", str(os.getpid()))

    @classmethod
    def tearDownClass(cls):
        code = cls.proxy.stop()
        cls.upstream.stop()
        assert code == 0, f"proxy exit status {code}: {cls.proxy.errors()}"
        # Every failure path is handled; nothing should have been logged as an error.
        assert cls.proxy.errors() == "", cls.proxy.errors()

    def setUp(self):
        status, document = self.proxy.control("POST", "reset")
        self.assertEqual((status, document), (200, {}))
        self.upstream.clear()

    def ec2(self, action, extra="", connection=None):
        body, headers = ec2_query(action, extra)
        return self.proxy.request("POST", "/", body, headers, connection)

    # -- forwarding and classification ------------------------------------------------------

    def test_query_request_is_forwarded_and_recorded(self):
        status, headers, body = self.ec2("DescribeInstances", "&DryRun=true&InstanceId.1=i-0abc")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"<DescribeInstancesResponse/>")
        self.assertEqual(headers.get("X-Upstream"), "fake")
        seen = self.upstream.last()
        self.assertEqual(seen["body"], b"Action=DescribeInstances&Version=2016-11-15"
                                       b"&DryRun=true&InstanceId.1=i-0abc")
        self.assertEqual(seen["headers"]["Host"], "ec2.us-east-1.amazonaws.com")
        self.assertIn("authorization", seen["header_names"])
        self.assertNotIn("connection", seen["header_names"])
        [call] = self.proxy.calls()
        self.assertEqual(call["seq"], 1)
        self.assertEqual(call["service"], "ec2")
        self.assertEqual(call["region"], "us-east-1")
        self.assertEqual(call["access_key"], "AKIDEXAMPLE")
        self.assertEqual(call["operation"], "DescribeInstances")
        self.assertTrue(call["dry_run"])
        self.assertFalse(call["mutating"])
        self.assertEqual(call["target_ids"], ["i-0abc"])
        self.assertEqual((call["status"], call["upstream_status"], call["fault"]), (200, 200, None))
        self.assertIsInstance(call["ms"], float)

    def test_mutating_query_and_since(self):
        self.ec2("DescribeNetworkInterfaces")
        self.ec2("ModifyNetworkInterfaceAttribute",
                 "&NetworkInterfaceId=eni-1&SecurityGroupId.1=sg-9")
        calls = self.proxy.calls(since=1)
        self.assertEqual([c["operation"] for c in calls], ["ModifyNetworkInterfaceAttribute"])
        self.assertTrue(calls[0]["mutating"])
        self.assertFalse(calls[0]["dry_run"])
        self.assertEqual(calls[0]["target_ids"], ["eni-1", "sg-9"])

    def test_x_amz_target_request(self):
        body = json.dumps({"DocumentName": "AWS-RunShellScript",
                           "InstanceIds": ["i-1", "i-2"]}).encode()
        status, _, _ = self.proxy.request("POST", "/", body, {
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.SendCommand",
            "Authorization": sigv4("ssm", "eu-west-1")})
        self.assertEqual(status, 200)
        [call] = self.proxy.calls()
        self.assertEqual((call["service"], call["region"], call["operation"]),
                         ("ssm", "eu-west-1", "SendCommand"))
        self.assertTrue(call["mutating"])
        self.assertEqual(call["target_ids"], ["i-1", "i-2"])

    def test_s3_put_and_head_object(self):
        connection = self.proxy.connection()
        try:
            headers = {"Authorization": sigv4("s3"), "Host": "127.0.0.1",
                       "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
            status, _, _ = self.proxy.request("PUT", "/evidence/case-1/disk.img", b"data",
                                              headers, connection)
            self.assertEqual(status, 200)
            self.assertEqual(self.upstream.last()["body"], b"data")
            connection.request("HEAD", "/evidence/case-1/disk.img", headers=headers)
            response = connection.getresponse()
            self.assertEqual(response.status, 200)
            # HeadObject's Content-Length is the object size, not the (empty) body's.
            self.assertEqual(response.getheader("Content-Length"), str(FakeUpstream.HEAD_LENGTH))
            self.assertEqual(response.read(), b"")
            # ...and the connection is still usable after the body-less response.
            status, _, body = self.proxy.request("GET", "/evidence/case-1/disk.img", b"",
                                                 headers, connection)
            self.assertEqual((status, body), (200, b"<DescribeInstancesResponse/>"))
        finally:
            connection.close()
        calls = self.proxy.calls()
        self.assertEqual([c["operation"] for c in calls], ["PutObject", "HeadObject", "GetObject"])
        self.assertEqual([c["mutating"] for c in calls], [True, False, False])
        self.assertEqual({c["service"] for c in calls}, {"s3"})

    def test_keep_alive(self):
        connection = self.proxy.connection()
        try:
            self.ec2("DescribeInstances", connection=connection)
            first_socket = connection.sock
            self.assertIsNotNone(first_socket)
            self.ec2("DescribeVolumes", connection=connection)
            self.assertIs(connection.sock, first_socket)
        finally:
            connection.close()
        self.assertEqual(self.upstream.count(), 2)
        self.assertEqual(len(self.proxy.calls()), 2)

    def test_chunked_request_body(self):
        connection = self.proxy.connection()
        try:
            connection.request("PUT", "/bucket/key", body=iter([b"hello ", b"chunked ", b"world"]),
                               headers={"Authorization": sigv4("s3"),
                                        "Transfer-Encoding": "chunked"},
                               encode_chunked=True)
            response = connection.getresponse()
            response.read()
            self.assertEqual(response.status, 200)
            # Same connection still works after a chunked request.
            self.ec2("DescribeInstances", connection=connection)
        finally:
            connection.close()
        seen = self.upstream.requests[0]
        self.assertEqual(seen["body"], b"hello chunked world")
        self.assertEqual(seen["headers"]["Content-Length"], "19")
        self.assertNotIn("transfer-encoding", seen["header_names"])

    def test_moto_api_forwarded_not_recorded(self):
        status, _, _ = self.proxy.request("POST", "/moto-api/reset")
        self.assertEqual(status, 200)
        self.assertEqual(self.upstream.last()["path"], "/moto-api/reset")
        self.assertEqual(self.proxy.calls(), [])

    def test_malformed_request_does_not_kill_server(self):
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as raw:
            raw.sendall(b"POST / HTTP/1.1\r\nContent-Length: banana\r\n\r\n")
            self.assertIn(b" 400 ", raw.recv(4096).split(b"\r\n")[0] + b" ")
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as raw:
            raw.sendall(b"\x16\x03\x01 garbage\r\n\r\n")
            raw.recv(4096)
        status, _, _ = self.ec2("DescribeInstances")
        self.assertEqual(status, 200)

    # -- faults ---------------------------------------------------------------------------------

    def test_throttle_ec2(self):
        self.proxy.faults([{"service": "ec2", "operation": "Describe*", "fault": "throttle"}])
        status, headers, body = self.ec2("DescribeInstances")
        self.assertEqual(status, 503)
        self.assertTrue(headers["Content-Type"].startswith("text/xml"))
        self.assertIn(b"<Code>RequestLimitExceeded</Code>", body)
        self.assertTrue(body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors>'))
        self.assertEqual(self.upstream.count(), 0)
        # A non-matching operation passes.
        status, _, _ = self.ec2("ModifyInstanceAttribute")
        self.assertEqual(status, 200)
        calls = self.proxy.calls()
        self.assertEqual([(c["fault"], c["status"], c["upstream_status"]) for c in calls],
                         [("throttle", 503, None), (None, 200, 200)])

    def test_throttle_shapes_per_protocol(self):
        self.proxy.faults([{"fault": "throttle"}])
        status, _, body = self.proxy.request("POST", "/", b"Action=GetUser&Version=2010-05-08", {
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": sigv4("iam")})
        self.assertEqual(status, 400)
        self.assertIn(b"<Type>Sender</Type><Code>Throttling</Code>", body)
        status, headers, body = self.proxy.request("POST", "/", b"{}", {
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.Scan",
            "Authorization": sigv4("dynamodb")})
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["__type"], "ThrottlingException")
        self.assertEqual(headers["Content-Type"], "application/x-amz-json-1.0")
        self.assertIn("x-amzn-RequestId", headers)
        status, _, body = self.proxy.request("GET", "/bucket?list-type=2", b"",
                                             {"Authorization": sigv4("s3")})
        self.assertEqual(status, 503)
        self.assertIn(b"<Code>SlowDown</Code>", body)
        status, headers, body = self.proxy.request("POST", "/findings", b"{}",
                                                   {"Authorization": sigv4("securityhub")})
        self.assertEqual(status, 429)
        self.assertEqual(headers["x-amzn-ErrorType"], "TooManyRequestsException")
        self.assertEqual(self.upstream.count(), 0)
        self.assertEqual([c["operation"] for c in self.proxy.calls()],
                         ["GetUser", "Scan", "ListObjectsV2", "GetFindings"])
        self.assertEqual(self.proxy.control("GET", "stats")[1]["faults"], {"throttle": 4})

    def test_error500(self):
        self.proxy.faults([{"service": "ec2", "fault": "error500"}])
        status, _, body = self.ec2("CreateSnapshot", "&VolumeId=vol-1")
        self.assertEqual(status, 500)
        self.assertIn(b"<Code>InternalError</Code>", body)
        self.assertEqual(self.upstream.count(), 0)

    def test_lost_forwards_then_fails(self):
        self.proxy.faults([{"service": "ec2", "operation": "CreateTags", "fault": "lost"}])
        status, _, body = self.ec2("CreateTags", "&ResourceId.1=i-1&Tag.1.Key=k&Tag.1.Value=v")
        self.assertEqual(status, 500)
        self.assertIn(b"<Code>InternalError</Code>", body)
        self.assertEqual(self.upstream.count(), 1)
        [call] = self.proxy.calls()
        self.assertEqual((call["fault"], call["status"], call["upstream_status"]), ("lost", 500, 200))
        self.assertEqual(call["target_ids"], ["i-1"])

    def test_max_limits_injections(self):
        self.proxy.faults([{"operation": "*", "fault": "throttle", "max": 2}])
        statuses = [self.ec2("DescribeInstances", f"&MaxResults={i}")[0] for i in range(5)]
        self.assertEqual(statuses, [503, 503, 200, 200, 200])
        self.assertEqual(self.proxy.control("GET", "faults")[1]["injected"], [2])

    def test_dry_run_filter(self):
        self.proxy.faults([{"service": "ec2", "fault": "throttle", "dry_run": False}])
        self.assertEqual(self.ec2("TerminateInstances", "&InstanceId.1=i-1&DryRun=true")[0], 200)
        self.assertEqual(self.ec2("TerminateInstances", "&InstanceId.1=i-1")[0], 503)

    def test_delay(self):
        self.proxy.faults([{"fault": "delay", "delay_ms": 300}])
        started = time.monotonic()
        status, _, _ = self.ec2("DescribeInstances")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        [call] = self.proxy.calls()
        self.assertEqual((call["fault"], call["upstream_status"]), ("delay", 200))

    def test_attempts_count_identical_requests(self):
        for _ in range(3):
            self.ec2("DescribeInstances")
        self.assertEqual([c["attempt"] for c in self.proxy.calls()], [0, 1, 2])

    def fates(self, bodies, parallel):
        def one(i):
            body, headers = ec2_query("ModifyNetworkInterfaceAttribute",
                                      f"&NetworkInterfaceId=eni-{i:04d}")
            return self.proxy.request("POST", "/", body, headers)[0]

        if parallel:
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                return list(pool.map(one, bodies))
        return [one(i) for i in bodies]

    def test_determinism(self):
        rules = [{"service": "ec2", "operation": "Modify*", "fault": "throttle", "rate": 0.5}]
        bodies = list(range(40))
        self.proxy.faults(rules, seed=7)
        first = self.fates(bodies, parallel=False)
        self.proxy.control("POST", "reset")
        self.proxy.faults(rules, seed=7)
        second = self.fates(bodies, parallel=True)  # timing differs; fates must not
        self.assertEqual(first, second)
        self.assertIn(503, first)
        self.assertIn(200, first)
        # A retried identical request rolls a fresh die per attempt; the fate of attempt N is
        # reproducible even though which thread's request becomes attempt N is not.
        self.proxy.control("POST", "reset")
        self.proxy.faults(rules, seed=7)
        self.fates([0] * 12, parallel=False)
        retries = [(c["attempt"], c["fault"]) for c in self.proxy.calls()]
        self.proxy.control("POST", "reset")
        self.proxy.faults(rules, seed=7)
        self.fates([0] * 12, parallel=True)
        again = sorted((c["attempt"], c["fault"]) for c in self.proxy.calls())
        self.assertEqual(again, retries)
        self.assertEqual({fault for _, fault in retries}, {None, "throttle"})

    def test_hang_closes_without_response(self):
        self.proxy.faults([{"fault": "hang", "hang_s": 2}])
        started = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.ec2("DescribeInstances")
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 1.8)
        self.assertLess(elapsed, 6)
        self.assertEqual(self.upstream.count(), 0)
        [call] = self.proxy.calls()
        self.assertEqual((call["fault"], call["status"]), ("hang", None))

    def test_hang_ends_when_client_leaves(self):
        self.proxy.faults([{"fault": "hang", "hang_s": 60}])
        connection = self.proxy.connection(timeout=0.5)
        with self.assertRaises(TimeoutError):
            self.ec2("DescribeInstances", connection=connection)
        connection.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            [call] = self.proxy.calls()
            if call["ms"] is not None:
                break
            time.sleep(0.1)
        self.assertIsNotNone(call["ms"], "hang did not notice the client closing")
        self.assertLess(call["ms"], 5000)

    def test_reset_clears_calls_and_rules(self):
        self.proxy.faults([{"fault": "throttle"}])
        self.assertEqual(self.ec2("DescribeInstances")[0], 503)
        self.assertEqual(len(self.proxy.calls()), 1)
        self.assertEqual(self.proxy.control("POST", "reset"), (200, {}))
        self.assertEqual(self.proxy.calls(), [])
        self.assertEqual(self.ec2("DescribeInstances")[0], 200)
        [call] = self.proxy.calls()
        self.assertEqual((call["seq"], call["attempt"]), (1, 0))

    def test_stats(self):
        self.proxy.faults([{"operation": "DescribeVolumes", "fault": "error500"}])
        self.ec2("DescribeInstances")
        self.ec2("DescribeInstances", "&MaxResults=5")
        self.ec2("DescribeVolumes")
        status, stats = self.proxy.control("GET", "stats")
        self.assertEqual(status, 200)
        self.assertEqual(stats, {"calls": 3,
                                 "by_operation": {"ec2:DescribeInstances": 2,
                                                  "ec2:DescribeVolumes": 1},
                                 "faults": {"error500": 1}})

    def test_bad_fault_rules_are_refused(self):
        for document in ({"rules": [{"fault": "explode"}]},
                         {"rules": [{"fault": "throttle", "operaton": "X"}]},
                         {"rules": [{"fault": "throttle", "rate": 2}]},
                         {"rules": "nope"}):
            status, answer = self.proxy.control("POST", "faults", document)
            self.assertEqual(status, 400, document)
            self.assertIn("error", answer)
        status, _, _ = self.proxy.request("POST", "/__proxy/faults", b"{not json")
        self.assertEqual(status, 400)
        self.assertEqual(self.proxy.control("GET", "nothing")[0], 404)


# ----------------------------------------------------------------------------------------------
# Classification, without a server
# ----------------------------------------------------------------------------------------------


class ClassifyTest(unittest.TestCase):
    def op(self, method, target, headers=None, body=b"", service="s3"):
        headers = {"Authorization": sigv4(service), "Host": "127.0.0.1:5000", **(headers or {})}
        return fault_proxy.classify(method, target, headers, body).operation

    def test_s3_operations(self):
        cases = [
            ("GET", "/", {}, "ListBuckets"),
            ("PUT", "/b", {}, "CreateBucket"),
            ("PUT", "/b?object-lock", {}, "PutObjectLockConfiguration"),
            ("GET", "/b?object-lock", {}, "GetObjectLockConfiguration"),
            ("PUT", "/b?versioning", {}, "PutBucketVersioning"),
            ("GET", "/b?versioning", {}, "GetBucketVersioning"),
            ("DELETE", "/b?policy", {}, "DeleteBucketPolicy"),
            ("PUT", "/b?publicAccessBlock", {}, "PutPublicAccessBlock"),
            ("GET", "/b?ownershipControls", {}, "GetBucketOwnershipControls"),
            ("PUT", "/b?acl", {}, "PutBucketAcl"),
            ("GET", "/b/k?acl", {}, "GetObjectAcl"),
            ("PUT", "/b?tagging", {}, "PutBucketTagging"),
            ("GET", "/b?encryption", {}, "GetBucketEncryption"),
            ("GET", "/b?location", {}, "GetBucketLocation"),
            ("GET", "/b?list-type=2&prefix=x", {}, "ListObjectsV2"),
            ("GET", "/b", {}, "ListObjects"),
            ("HEAD", "/b", {}, "HeadBucket"),
            ("DELETE", "/b/", {}, "DeleteBucket"),
            ("PUT", "/b/a/b/c", {}, "PutObject"),
            ("PUT", "/b/k", {"x-amz-copy-source": "/b/src"}, "CopyObject"),
            ("GET", "/b/k", {}, "GetObject"),
            ("HEAD", "/b/k", {}, "HeadObject"),
            ("DELETE", "/b/k", {}, "DeleteObject"),
            ("GET", "/b/k?retention", {}, "GetObjectRetention"),
            ("PUT", "/b/k?retention", {}, "PutObjectRetention"),
            ("POST", "/b/k?uploads", {}, "CreateMultipartUpload"),
            ("PUT", "/b/k?partNumber=1&uploadId=u", {}, "UploadPart"),
            ("POST", "/b/k?uploadId=u", {}, "CompleteMultipartUpload"),
            ("POST", "/b?delete", {}, "DeleteObjects"),
            ("PATCH", "/b/k", {}, "PATCH s3"),
        ]
        for method, target, headers, expected in cases:
            with self.subTest(method=method, target=target):
                self.assertEqual(self.op(method, target, headers), expected)

    def test_s3_virtual_host(self):
        self.assertEqual(self.op("PUT", "/", {"Host": "bucket.s3.us-east-1.amazonaws.com"}),
                         "CreateBucket")
        self.assertEqual(self.op("PUT", "/key", {"Host": "bucket.s3.amazonaws.com"}), "PutObject")
        self.assertEqual(self.op("GET", "/", {"Host": "s3.amazonaws.com"}), "ListBuckets")

    def test_rest_json(self):
        self.assertEqual(self.op("POST", "/findings/import", service="securityhub"),
                         "BatchImportFindings")
        self.assertEqual(self.op("PATCH", "/findings/batchupdate", service="securityhub"),
                         "BatchUpdateFindings")
        self.assertEqual(self.op("POST", "/2015-03-31/functions/fn/invocations", service="lambda"),
                         "Invoke")
        self.assertEqual(self.op("GET", "/things/abc123/parts", service="other"),
                         "GET /things/{id}/parts")
        info = fault_proxy.classify("GET", "/things", {"Authorization": sigv4("other")}, b"")
        self.assertFalse(info.mutating)

    def test_unsigned_and_get_query(self):
        info = fault_proxy.classify("GET", "/?Action=GetCallerIdentity&Version=2011-06-15", {}, b"")
        self.assertEqual((info.service, info.operation, info.mutating, info.protocol),
                         ("unknown", "GetCallerIdentity", False, "query"))
        info = fault_proxy.classify("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
                                    b"Action=DescribeRegions&Version=2016-11-15")
        self.assertEqual((info.service, info.protocol), ("unknown", "ec2"))

    def test_mutating(self):
        for name, expected in [("DescribeInstances", False), ("GetObject", False),
                               ("ListUsers", False), ("ReceiveMessage", False),
                               ("Verify", False), ("Scan", False), ("CreateTags", True),
                               ("StopInstances", True), ("Sign", True), ("POST /x", True),
                               ("GET /x", False)]:
            method = name.split(" ")[0] if " " in name else "POST"
            self.assertEqual(fault_proxy.is_mutating(name, method), expected, name)

    def test_die_formula(self):
        import hashlib
        info = fault_proxy.Classified(service="ec2", operation="X")
        digest = hashlib.sha256(b"42|0|ec2|X|3|" + b"body").digest()
        self.assertEqual(fault_proxy.die(42, 0, info, 3, b"body"),
                         int.from_bytes(digest[:8], "big") / 2**64)


# ----------------------------------------------------------------------------------------------
# Process lifecycle
# ----------------------------------------------------------------------------------------------


class AgentTest(unittest.TestCase):
    """The SSM agent's stand-in and the one moto answer renamed."""

    def test_sender_ids_are_stamped_for_known_keys_only(self):
        proxy = fault_proxy.Proxy("http://127.0.0.1:1", 5.0, False)
        proxy.set_principals({"AKIARESPONDER": "AIDARESPONDER"})
        proxy.sent("AKIARESPONDER", json.dumps({"MessageId": "m1"}).encode())
        proxy.sent("AKIAOTHER", json.dumps({"MessageId": "m2"}).encode())
        answer = json.dumps({"Messages": [
            {"MessageId": "m1", "Attributes": {"SenderId": "AIDAIT2UOQQY3AUEKVGXU"}},
            {"MessageId": "m2", "Attributes": {"SenderId": "AIDAIT2UOQQY3AUEKVGXU"}},
        ]}).encode()
        stamped = json.loads(proxy.stamp_senders(answer))["Messages"]
        self.assertEqual(stamped[0]["Attributes"]["SenderId"], "AIDARESPONDER")
        self.assertEqual(stamped[1]["Attributes"]["SenderId"], "AIDAIT2UOQQY3AUEKVGXU")
        with self.assertRaises(ValueError):
            proxy.set_principals(["not", "a", "map"])
        proxy.reset()
        self.assertEqual(proxy.stamp_senders(answer), answer)

    def test_a_message_received_before_its_send_is_answered_is_still_stamped(self):
        # A long poll returns the message while its SendMessage answer is still on its way
        # back: stamping waits for the send in flight, then knows the sender.
        proxy = fault_proxy.Proxy("http://127.0.0.1:1", 5.0, False)
        proxy.set_principals({"AKIARESPONDER": "AIDARESPONDER"})
        proxy.begin_send()
        answer = json.dumps({"Messages": [
            {"MessageId": "m1", "Attributes": {"SenderId": "AIDAIT2UOQQY3AUEKVGXU"}},
        ]}).encode()
        stamped = []
        receiver = threading.Thread(target=lambda: stamped.append(proxy.stamp_senders(answer)))
        receiver.start()
        time.sleep(0.2)
        self.assertEqual(stamped, [], "stamping waits for the send in flight")
        proxy.sent("AKIARESPONDER", json.dumps({"MessageId": "m1"}).encode())
        proxy.end_send()
        receiver.join(5)
        message = json.loads(stamped[0])["Messages"][0]
        self.assertEqual(message["Attributes"]["SenderId"], "AIDARESPONDER")

    def test_list_parts_root_is_renamed_and_nothing_else(self):
        moto = (b'<?xml version="1.0"?><ListPartsResponse xmlns="x"><Part><ETag>"e"</ETag>'
                b'</Part></ListPartsResponse>')
        self.assertEqual(fault_proxy.list_parts_result(moto),
                         b'<?xml version="1.0"?><ListPartsResult xmlns="x"><Part><ETag>"e"</ETag>'
                         b'</Part></ListPartsResult>')

    def test_the_agent_runs_the_upload_functions_and_reports_through_the_invocation(self):
        # The functions as firebreak writes them, sending to an address nothing listens on:
        # curl fails, the artifact is removed anyway, and the invocation says Failed.
        url = f"http://127.0.0.1:{free_port()}/b/k"
        functions = [
            fault_proxy.UPLOAD_BEGIN + " (test)",
            "firebreak_md5() { echo x; }",
            "firebreak_upload() {",
            '  name="$1"; file="$2"; url=""; set --',
            '  case "$name" in',
            f"    'a.txt') url='{url}'; set -- ;;",
            "  esac",
            '  status=0; curl -fsS -X PUT --upload-file "$file" "$url" 2>/dev/null || status=$?',
            '  rm -f "$file"; [ "$status" -ne 0 ] || echo "firebreak-upload $name s 1 "',
            '  echo "left: $(ls)" >&2; return "$status"',
            "}",
            fault_proxy.UPLOAD_END,
        ]
        body = json.dumps({"InstanceIds": ["i-1"],
                           "Parameters": {"commands": ["\n".join(functions), "body"]}}).encode()
        answer = json.dumps({"Command": {"CommandId": "c-1"}}).encode()
        self.assertEqual(fault_proxy.simulate_agent_uploads(body, answer), 1)
        moto = json.dumps({"Status": "Success", "StandardOutputContent": ""}).encode()
        asked = json.dumps({"CommandId": "c-1", "InstanceId": "i-1"}).encode()
        invocation = json.loads(fault_proxy.agent_invocation(asked, moto))
        self.assertEqual(invocation["Status"], "Failed")
        self.assertEqual(invocation["ResponseCode"], 7)  # curl: could not connect
        self.assertIn("left: \n", invocation["StandardErrorContent"])  # the artifact is gone
        other = json.dumps({"CommandId": "c-2", "InstanceId": "i-1"}).encode()
        self.assertEqual(fault_proxy.agent_invocation(other, moto), moto)


class LifecycleTest(unittest.TestCase):
    def test_upstream_down_gives_502(self):
        proxy = ProxyProcess(f"http://127.0.0.1:{free_port()}")
        try:
            body, headers = ec2_query("DescribeInstances")
            status, _, _ = proxy.request("POST", "/", body, headers)
            self.assertEqual(status, 502)
            [call] = proxy.calls()
            self.assertEqual(call["status"], 502)
            self.assertIn("upstream", call["error"])
        finally:
            self.assertEqual(proxy.stop(), 0)

    def test_parent_pid_watchdog(self):
        parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
        proxy = ProxyProcess("http://127.0.0.1:1", "--parent-pid", str(parent.pid))
        try:
            parent.wait()  # reaped, so its pid no longer exists
            self.assertEqual(proxy.process.wait(10), 0)
        finally:
            proxy.stop()


# ----------------------------------------------------------------------------------------------
# Real moto, when installed
# ----------------------------------------------------------------------------------------------


def moto_server_path() -> str | None:
    venv = REPO / ".venv" / "bin" / "moto_server"
    if venv.exists():
        return str(venv)
    return shutil.which("moto_server")


@unittest.skipUnless(moto_server_path(), "moto_server not installed (.venv/bin or PATH)")
class MotoTest(unittest.TestCase):
    def test_describe_regions_through_proxy(self):
        port = free_port()
        moto = subprocess.Popen([moto_server_path(), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proxy = None
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or moto.poll() is not None:
                        self.fail("moto did not start")
                    time.sleep(0.2)
            proxy = ProxyProcess(f"http://127.0.0.1:{port}")
            self.assertEqual(proxy.request("POST", "/moto-api/reset")[0], 200)
            body, headers = ec2_query("DescribeRegions")
            headers["Host"] = f"127.0.0.1:{proxy.port}"
            connection = proxy.connection(timeout=60)
            try:
                for _ in range(2):  # twice, over one keep-alive connection
                    status, _, data = proxy.request("POST", "/", body, headers, connection)
                    self.assertEqual(status, 200, data[:500])
                    self.assertIn(b"DescribeRegionsResponse", data)
            finally:
                connection.close()
            proxy.faults([{"service": "ec2", "fault": "throttle"}])
            status, _, data = proxy.request("POST", "/", body, headers)
            self.assertEqual(status, 503)
            calls = proxy.calls()
            self.assertEqual([(c["operation"], c["status"]) for c in calls],
                             [("DescribeRegions", 200)] * 2 + [("DescribeRegions", 503)])
        finally:
            if proxy:
                self.assertEqual(proxy.stop(), 0)
            moto.terminate()
            moto.wait(10)


if __name__ == "__main__":
    unittest.main()
