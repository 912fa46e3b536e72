#!/usr/bin/env python3
"""Seed a local AWS emulator (moto) with a realistic "compromised" EC2 instance.

The instance: member of an Auto Scaling group, two network interfaces in different security
groups, an Elastic IP, an IAM instance profile, two EBS volumes, production tags. Also a
deny-all instance profile to swap in during containment. Prints the ids as one JSON document.

Usage: seed-sandbox.py --endpoint http://127.0.0.1:PORT [--region us-east-1] [--name web-1]
Runs with the project's .venv (boto3 comes with moto). Never point it at real AWS: it refuses
endpoints that are not on loopback.
"""
import argparse
import json
import sys
from urllib.parse import urlparse

import boto3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--name", default="web-1")
    parser.add_argument("--protected", action="store_true", help="tag the instance firebreak:protected")
    args = parser.parse_args()
    host = urlparse(args.endpoint).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing to seed {args.endpoint}: only a local emulator on loopback", file=sys.stderr)
        return 2

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=args.region
    )
    ec2 = session.client("ec2", endpoint_url=args.endpoint)
    iam = session.client("iam", endpoint_url=args.endpoint)
    asg = session.client("autoscaling", endpoint_url=args.endpoint)
    az = f"{args.region}a"
    name = args.name

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName=f"{name}-web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=web, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    admin = ec2.create_security_group(GroupName=f"{name}-admin", Description="admin", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=admin, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    )

    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName=f"{name}-app", AssumeRolePolicyDocument=trust)
    profile = iam.create_instance_profile(InstanceProfileName=f"{name}-app")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=f"{name}-app", RoleName=f"{name}-app")
    iam.create_role(RoleName=f"firebreak-quarantine-{name}", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(
        RoleName=f"firebreak-quarantine-{name}", PolicyName="deny-all",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}),
    )
    quarantine = iam.create_instance_profile(InstanceProfileName=f"{name}-quarantine")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=f"{name}-quarantine", RoleName=f"firebreak-quarantine-{name}")

    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-template",
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro", "SecurityGroupIds": [web]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    group = f"{name}-asg"
    asg.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=1, MaxSize=2, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"}, VPCZoneIdentifier=subnet,
    )
    instance = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    tags = [{"Key": "Name", "Value": name}, {"Key": "env", "Value": "prod"}]
    if args.protected:
        tags.append({"Key": "firebreak:protected", "Value": "true"})
    ec2.create_tags(Resources=[instance], Tags=tags)

    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[admin], Description=f"{name} admin")["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance, DeviceIndex=1)
    allocation = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=instance)
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=instance)

    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    volumes = [m["Ebs"]["VolumeId"] for m in described.get("BlockDeviceMappings", []) if "Ebs" in m]
    for device in ("/dev/sdf", "/dev/sdg"):
        if len(volumes) >= 2:
            break
        volume = ec2.create_volume(AvailabilityZone=az, Size=8)["VolumeId"]
        ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device=device)
        volumes.append(volume)
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    enis = sorted(
        described["NetworkInterfaces"], key=lambda n: n.get("Attachment", {}).get("DeviceIndex", 0)
    )

    print(json.dumps({
        "instance_id": instance,
        "vpc_id": vpc,
        "subnet_id": subnet,
        "availability_zone": az,
        "security_groups": {"web": web, "admin": admin},
        "network_interface_ids": [n["NetworkInterfaceId"] for n in enis],
        "eip_allocation_id": allocation["AllocationId"],
        "public_ip": allocation["PublicIp"],
        "instance_profile_arn": profile["Arn"],
        "quarantine_profile_arn": quarantine["Arn"],
        "autoscaling_group": group,
        "volume_ids": volumes,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
