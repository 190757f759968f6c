"""The environment's off-site backup bucket (pgBackRest's second repository on AWS).

Versioned (an overwritten or deleted backup file stays recoverable), encrypted at rest with
the account's KMS key for S3, closed to the public, and with a lifecycle rule that expires old
versions and abandoned uploads (pgBackRest expires current backups itself, by its retention).
``down`` keeps it: off-site backups outlive the environment unless ``--delete-backups`` says.
"""

from __future__ import annotations

from typing import Any

from quantbot_infra.aws.session import error_code
from quantbot_infra.aws.spec import TAG_KEY, Resource
from quantbot_infra.topology import Topology

KEY = "bucket/backup"
BACKUP_GROUP = "backup"
SETTINGS = ("versioning", "encryption", "public_access", "lifecycle")


def bucket_name(env: str, account: str, region: str) -> str:
    # bucket names are global: the account and region keep two accounts' environments apart
    return f"qb-{env}-backup-{account}-{region}"


def wanted(topo: Topology, account: str) -> Resource | None:
    """The bucket, in the region of the first backup class; none without a backup class."""
    holders = [c for c in topo.classes if BACKUP_GROUP in c.groups and c.count]
    if not holders:
        return None
    region = holders[0].region or topo.regions[0].name
    days = topo.aws.backup_noncurrent_days
    return Resource(
        "bucket",
        KEY,
        region,
        bucket_name(topo.environment, account, region),
        {"versioning": "Enabled", "encryption": "aws:kms", "public_access": True, "lifecycle": days},
        SETTINGS,
    )


def read(s3: Any, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(tags, settings) of an existing bucket."""
    try:
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name).get("TagSet", [])}
    except Exception as exc:
        if error_code(exc) != "NoSuchTagSet":
            raise
        tags = {}
    settings: dict[str, Any] = {"versioning": s3.get_bucket_versioning(Bucket=name).get("Status", "Off")}
    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        settings["encryption"] = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    except Exception as exc:
        if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        settings["encryption"] = None
    try:
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        settings["public_access"] = all(block.values())
    except Exception as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        settings["public_access"] = False
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        settings["lifecycle"] = next(
            (
                r["NoncurrentVersionExpiration"]["NoncurrentDays"]
                for r in rules
                if r.get("ID") == "qb-backup" and "NoncurrentVersionExpiration" in r
            ),
            None,
        )
    except Exception as exc:
        if error_code(exc) != "NoSuchLifecycleConfiguration":
            raise
        settings["lifecycle"] = None
    return tags, settings


def create(s3: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    args: dict[str, Any] = {"Bucket": res.name}
    if res.region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": res.region}
    s3.create_bucket(**args)
    s3.put_bucket_tagging(
        Bucket=res.name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in res.tags(env).items()]}
    )
    configure(s3, res)
    return res.name


def configure(s3: Any, res: Resource) -> None:
    """Every setting, said again (each call replaces the bucket's setting of its kind)."""
    s3.put_public_access_block(
        Bucket=res.name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=res.name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=res.name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}
            ]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=res.name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "qb-backup",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": res.attrs["lifecycle"]},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }
            ]
        },
    )


def empty_and_delete(s3: Any, name: str) -> None:
    """Every version and delete marker, then the bucket (only with ``down --delete-backups``)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if doomed:
            s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
    s3.delete_bucket(Bucket=name)


__all__ = ["KEY", "TAG_KEY", "bucket_name", "create", "empty_and_delete", "read", "wanted"]
