#!/usr/bin/env python3
"""Everything an EC2 containment may change on an instance, as AWS describes it, volatile
fields (association and attachment ids and times, modification times) left out, so a describe
before the containment can be compared with one after its release.

describe INSTANCE_ID ENDPOINT: prints one JSON document.
register INSTANCE_ID ENDPOINT: a load balancer target group holding the instance on port 8080
  (what a deploy script registers by hand); prints {"target_group_arn"}.
"""
import json
import sys
from urllib.parse import urlparse

import boto3

VOLATILE = {"AssociationId", "AttachTime", "AttachmentId", "LaunchTime", "Id", "ResponseMetadata",
            "StateTransitionReason", "UsageOperationUpdateTime", "ClientToken",
            # moto reports an attached interface's groups as its own plus the instance's
            # (MOTO-NOTES); the interfaces' own groups are described separately below.
            "SecurityGroups", "Groups",
            # moto drops these two from MetadataOptions after any ModifyInstanceMetadataOptions.
            "HttpProtocolIpv6", "InstanceMetadataTags"}


def client(service, endpoint):
    assert urlparse(endpoint).hostname in ("127.0.0.1", "localhost"), "loopback only"
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def describe(instance, endpoint):
    ec2, asg, elb = client("ec2", endpoint), client("autoscaling", endpoint), client("elbv2", endpoint)
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    out = {"instance": strip(described)}
    out["instance"]["Tags"] = sorted(described.get("Tags", []), key=lambda t: t["Key"])
    interfaces = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}])["NetworkInterfaces"]
    out["interface_groups"] = {}
    for eni in interfaces:
        own = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [eni["VpcId"]]}])["SecurityGroups"]
        out["interface_groups"][eni["NetworkInterfaceId"]] = sorted(
            g["GroupId"] for g in own
            if ec2.describe_network_interfaces(Filters=[
                {"Name": "network-interface-id", "Values": [eni["NetworkInterfaceId"]]},
                {"Name": "group-id", "Values": [g["GroupId"]]}])["NetworkInterfaces"])
        out.setdefault("interface_tags", {})[eni["NetworkInterfaceId"]] = sorted(
            (t["Key"], t["Value"]) for t in eni.get("TagSet", []))
    for attribute, key in [("disableApiTermination", "DisableApiTermination"),
                           ("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior")]:
        out[key] = ec2.describe_instance_attribute(InstanceId=instance, Attribute=attribute)[key]
    # Addresses by the instance's interfaces: moto leaves InstanceId unset on an address
    # associated by interface id (AWS sets it), so that field is not compared.
    enis = [e["NetworkInterfaceId"] for e in interfaces]
    out["addresses"] = sorted(({k: v for k, v in strip(a).items() if k != "InstanceId"}
                               for a in ec2.describe_addresses(
                                   Filters=[{"Name": "network-interface-id", "Values": enis}])["Addresses"]
                               if a.get("AssociationId")), key=json.dumps)
    out["autoscaling"] = strip(asg.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"])
    registered = []
    for group in elb.describe_target_groups()["TargetGroups"]:
        for health in elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]:
            if health["Target"]["Id"] == instance:
                registered.append([group["TargetGroupArn"], health["Target"].get("Port")])
    out["target_groups"] = sorted(registered)
    volumes = [m["Ebs"]["VolumeId"] for m in described.get("BlockDeviceMappings", []) if "Ebs" in m]
    out["volume_tags"] = {v: sorted((t["Key"], t["Value"]) for t in ec2.describe_volumes(VolumeIds=[v])["Volumes"][0].get("Tags", [])) for v in volumes}
    print(json.dumps(out, sort_keys=True, default=str))


def register(instance, endpoint):
    ec2, elb = client("ec2", endpoint), client("elbv2", endpoint)
    vpc = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["VpcId"]
    group = elb.create_target_group(Name=f"by-hand-{instance[-10:]}", Protocol="HTTP", Port=80, VpcId=vpc,
                                    TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": 8080}])
    print(json.dumps({"target_group_arn": group}))


if __name__ == "__main__":
    {"describe": describe, "register": register}[sys.argv[1]](sys.argv[2], sys.argv[3])
