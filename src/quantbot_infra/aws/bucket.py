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


def _unless_missing(call: Any, missing: str, default: Any) -> Any:
    """``call()``, or ``default`` where the bucket has no such setting (error ``missing``)."""
    try:
        return call()
    except Exception as exc:
        if error_code(exc) != missing:
            raise
        return default


def read(s3: Any, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(tags, settings) of an existing bucket."""
    tagset = _unless_missing(lambda: s3.get_bucket_tagging(Bucket=name)["TagSet"], "NoSuchTagSet", [])
    rules = _unless_missing(
        lambda: s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"],
        "ServerSideEncryptionConfigurationNotFoundError",
        [],
    )
    block = _unless_missing(
        lambda: s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"],
        "NoSuchPublicAccessBlockConfiguration",
        {},
    )
    lifecycle = _unless_missing(
        lambda: s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"],
        "NoSuchLifecycleConfiguration",
        [],
    )
    settings = {
        "versioning": s3.get_bucket_versioning(Bucket=name).get("Status", "Off"),
        "encryption": rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else None,
        "public_access": bool(block) and all(block.values()),
        "lifecycle": next(
            (
                r["NoncurrentVersionExpiration"]["NoncurrentDays"]
                for r in lifecycle
                if r.get("ID") == "qb-backup" and "NoncurrentVersionExpiration" in r
            ),
            None,
        ),
    }
    return {t["Key"]: t["Value"] for t in tagset}, settings


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
