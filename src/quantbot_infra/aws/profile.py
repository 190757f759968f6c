"""The backup hosts' instance profile: the IAM role through which pgBackRest on the backup
class reaches the environment's backup bucket, and nothing else (list the bucket; read, write
and delete its objects). No access key is ever made: the instance's metadata service hands the
role's short-lived credentials to the host (IMDSv2 only)."""

from __future__ import annotations

import json
import time
from typing import Any

from quantbot_infra.aws.session import error_code
from quantbot_infra.aws.spec import Resource

KEY = "profile/backup"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
POLICY_NAME = "qb-backup-bucket"


def policy(bucket_name: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": f"arn:aws:s3:::{bucket_name}",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket_name}/*",
            },
        ],
    }


def wanted(env: str, bucket: Resource) -> Resource:
    return Resource(
        "profile", KEY, bucket.region, f"qb-{env}-backup", {"policy": policy(bucket.name)}, ("policy",)
    )


def read(iam: Any, name: str) -> tuple[dict[str, str], dict[str, Any]] | None:
    """(tags, {policy}) of the role, or None when there is none."""
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    tags = {t["Key"]: t["Value"] for t in role.get("Tags", [])}
    try:
        doc = iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
    except Exception as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        doc = None
    if isinstance(doc, str):
        doc = json.loads(doc)
    return tags, {"policy": doc}


def create(iam: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    tags = [{"Key": k, "Value": v} for k, v in res.tags(env).items()]
    iam.create_role(
        RoleName=res.name,
        AssumeRolePolicyDocument=json.dumps(TRUST),
        Tags=tags,
        Description=f"quantbot-infra {env}: pgBackRest to the backup bucket",
    )
    configure(iam, res)
    iam.create_instance_profile(InstanceProfileName=res.name, Tags=tags)
    iam.add_role_to_instance_profile(InstanceProfileName=res.name, RoleName=res.name)
    return res.name


def configure(iam: Any, res: Resource) -> None:
    iam.put_role_policy(
        RoleName=res.name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(res.attrs["policy"])
    )


def delete(iam: Any, name: str) -> None:
    for step in (
        lambda: iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name),
        lambda: iam.delete_instance_profile(InstanceProfileName=name),
        lambda: iam.delete_role_policy(RoleName=name, PolicyName=POLICY_NAME),
        lambda: iam.delete_role(RoleName=name),
    ):
        try:
            step()
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise


def launch_retrying(run: Any, **args: Any) -> dict[str, Any]:
    """``run_instances`` with an instance profile: IAM takes a few seconds to show a new
    profile to EC2, so its 'invalid profile' answer is waited out (a minute at most)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return run(**args)
        except Exception as exc:
            if (
                error_code(exc) != "InvalidParameterValue"
                or "iamInstanceProfile" not in str(exc)
                or time.monotonic() > deadline
            ):
                raise
            time.sleep(5)
