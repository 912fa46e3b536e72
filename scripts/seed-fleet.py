#!/usr/bin/env python3
"""Seed a local AWS emulator (moto) with an outbreak: N running instances over K VPCs.

Each VPC gets a subnet and two security groups; each instance gets its VPC's web group, two
EBS volumes (root and data) and production tags; every fifth instance a second network
interface in the admin group. Instances are launched in batches (RunInstances with a count),
so 1000 instances take seconds, not minutes. Prints the ids as one JSON document:
{"instances": [{"instance_id", "vpc_id", "network_interface_ids", "volume_ids"}], "vpcs": [..]}.

Usage: seed-fleet.py --endpoint http://127.0.0.1:PORT --instances 200 --vpcs 3
Never point it at real AWS: it refuses endpoints that are not on loopback.
"""
import argparse
import json
import sys
from urllib.parse import urlparse

import boto3

BATCH = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--instances", type=int, default=48)
    parser.add_argument("--vpcs", type=int, default=1)
    parser.add_argument("--second-interface-every", type=int, default=5,
                        help="every Nth instance gets a second interface (0: none)")
    parser.add_argument("--shared-profile", default="",
                        help="launch every instance with one instance profile of this name (one role shared by the fleet)")
    args = parser.parse_args()
    host = urlparse(args.endpoint).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing to seed {args.endpoint}: only a local emulator on loopback", file=sys.stderr)
        return 2
    if args.instances < 1 or args.vpcs < 1:
        print("--instances and --vpcs must be at least 1", file=sys.stderr)
        return 2

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=args.region
    )
    ec2 = session.client("ec2", endpoint_url=args.endpoint)
    az = f"{args.region}a"
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    profile = None
    if args.shared_profile:
        iam = session.client("iam", endpoint_url=args.endpoint)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                 "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        role = iam.create_role(RoleName=args.shared_profile, AssumeRolePolicyDocument=trust)["Role"]
        profile = iam.create_instance_profile(InstanceProfileName=args.shared_profile)["InstanceProfile"]
        iam.add_role_to_instance_profile(InstanceProfileName=args.shared_profile, RoleName=args.shared_profile)

    vpcs = []
    for v in range(args.vpcs):
        vpc = ec2.create_vpc(CidrBlock=f"10.{v}.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{v}.0.0/17", AvailabilityZone=az)["Subnet"]["SubnetId"]
        web = ec2.create_security_group(GroupName=f"fleet-{v}-web", Description="web", VpcId=vpc)["GroupId"]
        admin = ec2.create_security_group(GroupName=f"fleet-{v}-admin", Description="admin", VpcId=vpc)["GroupId"]
        vpcs.append({"vpc_id": vpc, "subnet_id": subnet, "web": web, "admin": admin})

    # Instances spread evenly: VPC v gets every K-th instance.
    counts = [args.instances // args.vpcs + (1 if v < args.instances % args.vpcs else 0) for v in range(args.vpcs)]
    instances = []
    for v, count in enumerate(counts):
        made = 0
        while made < count:
            n = min(BATCH, count - made)
            launched = ec2.run_instances(
                ImageId=image, InstanceType="t3.micro", MinCount=n, MaxCount=n,
                SubnetId=vpcs[v]["subnet_id"], SecurityGroupIds=[vpcs[v]["web"]],
                BlockDeviceMappings=[
                    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
                    {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": False}},
                ],
                TagSpecifications=[{"ResourceType": "instance", "Tags": [
                    {"Key": "env", "Value": "prod"}, {"Key": "fleet", "Value": f"vpc-{v}"}]}],
            )["Instances"]
            for instance in launched:
                instances.append({"instance_id": instance["InstanceId"], "vpc_id": vpcs[v]["vpc_id"], "vpc_index": v})
            made += n

    # One association per instance: moto associates a RunInstances profile with the first
    # instance of a batch only.
    if profile:
        for item in instances:
            ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=item["instance_id"])

    if args.second_interface_every > 0:
        for i, item in enumerate(instances):
            if i % args.second_interface_every == 0:
                v = vpcs[item["vpc_index"]]
                eni = ec2.create_network_interface(SubnetId=v["subnet_id"], Groups=[v["admin"]])["NetworkInterface"]["NetworkInterfaceId"]
                ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=item["instance_id"], DeviceIndex=1)

    # Read back what exists (interfaces, volumes), a page of ids at a time.
    by_id = {i["instance_id"]: i for i in instances}
    ids = list(by_id)
    for start in range(0, len(ids), 200):
        page = ec2.describe_instances(InstanceIds=ids[start:start + 200])
        for reservation in page["Reservations"]:
            for described in reservation["Instances"]:
                item = by_id[described["InstanceId"]]
                enis = sorted(described["NetworkInterfaces"], key=lambda n: n.get("Attachment", {}).get("DeviceIndex", 0))
                item["network_interface_ids"] = [n["NetworkInterfaceId"] for n in enis]
                item["volume_ids"] = [m["Ebs"]["VolumeId"] for m in described.get("BlockDeviceMappings", []) if "Ebs" in m]
    for item in instances:
        item.pop("vpc_index", None)

    seeded = {"instances": instances, "vpcs": vpcs}
    if profile:
        seeded["instance_profile_arn"] = profile["Arn"]
        seeded["role_name"] = role["RoleName"]
    print(json.dumps(seeded, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
