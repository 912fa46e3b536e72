#!/usr/bin/env python3
"""An IAM Identity Center user in moto, and its full description for before/after compares.

seed NAME ENDPOINT: the user, two groups it belongs to, two permission sets (one with an inline
policy of its own) assigned to it in this account. Prints {"user_id", "instance_arn",
"permission_set_arns"}.
describe NAME ENDPOINT: its assignments, group memberships and the sets' inline policies.
Loopback endpoints only.
"""
import json
import sys
from urllib.parse import urlparse

import boto3

ACCOUNT = "123456789012"


def client(service, endpoint):
    assert urlparse(endpoint).hostname in ("127.0.0.1", "localhost"), "loopback only"
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def instance(endpoint):
    return client("sso-admin", endpoint).list_instances()["Instances"][0]


def seed(name, endpoint):
    sso, ids = client("sso-admin", endpoint), client("identitystore", endpoint)
    inst = instance(endpoint)
    store, arn = inst["IdentityStoreId"], inst["InstanceArn"]
    user = ids.create_user(IdentityStoreId=store, UserName=name, DisplayName=name,
                           Name={"GivenName": name, "FamilyName": "Example"})["UserId"]
    for group in ("engineers", "oncall"):
        gid = ids.create_group(IdentityStoreId=store, DisplayName=f"{name}-{group}")["GroupId"]
        ids.create_group_membership(IdentityStoreId=store, GroupId=gid, MemberId={"UserId": user})
    sets = []
    for set_name in ("AdminAccess", "ReadOnly"):
        # SessionDuration given: moto answers a missing one as a number, which the SDK rejects.
        ps = sso.create_permission_set(InstanceArn=arn, Name=f"{name}-{set_name}",
                                       SessionDuration="PT1H")["PermissionSet"]["PermissionSetArn"]
        sso.create_account_assignment(InstanceArn=arn, TargetId=ACCOUNT, TargetType="AWS_ACCOUNT",
                                      PermissionSetArn=ps, PrincipalType="USER", PrincipalId=user)
        sets.append(ps)
    sso.put_inline_policy_to_permission_set(InstanceArn=arn, PermissionSetArn=sets[1], InlinePolicy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Sid": "NoBilling", "Effect": "Deny", "Action": "aws-portal:*", "Resource": "*"}]}))
    print(json.dumps({"user_id": user, "instance_arn": arn, "permission_set_arns": sets}))


def describe(name, endpoint):
    sso, ids = client("sso-admin", endpoint), client("identitystore", endpoint)
    inst = instance(endpoint)
    store, arn = inst["IdentityStoreId"], inst["InstanceArn"]
    user = ids.get_user_id(IdentityStoreId=store, AlternateIdentifier={
        "UniqueAttribute": {"AttributePath": "userName", "AttributeValue": name}})["UserId"]
    assignments = sso.list_account_assignments_for_principal(
        InstanceArn=arn, PrincipalId=user, PrincipalType="USER")["AccountAssignments"]
    groups = ids.list_group_memberships_for_member(IdentityStoreId=store, MemberId={"UserId": user})["GroupMemberships"]
    # By name, not id: a reseed makes new ids (the crash matrix compares two seeds).
    set_name = {ps: sso.describe_permission_set(InstanceArn=arn, PermissionSetArn=ps)["PermissionSet"]["Name"]
                for ps in sso.list_permission_sets(InstanceArn=arn)["PermissionSets"]}
    policies = {}
    for ps, set_label in set_name.items():
        text = sso.get_inline_policy_for_permission_set(InstanceArn=arn, PermissionSetArn=ps)["InlinePolicy"]
        policies[set_label] = json.loads(text) if text else None
    group_name = lambda gid: ids.describe_group(IdentityStoreId=store, GroupId=gid)["DisplayName"]
    print(json.dumps({
        "assignments": sorted([a["AccountId"], set_name[a["PermissionSetArn"]]] for a in assignments),
        # Membership ids are new when a membership is re-created: compared by group.
        "groups": sorted(group_name(g["GroupId"]) for g in groups),
        "inline_policies": policies,
    }, sort_keys=True))


if __name__ == "__main__":
    {"seed": seed, "describe": describe}[sys.argv[1]](sys.argv[2], sys.argv[3])
