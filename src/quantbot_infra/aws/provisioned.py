"""The environment's provisioned state: what the inventory needs from the cloud (instance ids,
private and public addresses), written under ``.state/<env>/`` after ``up``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from quantbot_infra.aws.observe import Observed


def record(obs: Observed, where: str) -> dict[str, Any]:
    hosts = {}
    for f in obs.owned.values():
        if f.kind == "instance":
            hosts[f.name] = {
                "instance_id": f.id,
                "region": f.region,
                "az": f.attrs["az"],
                "instance_type": f.attrs["instance_type"],
                "private_ip": f.attrs["private_ip"],
                "public_ip": f.attrs["public_ip"] or None,
            }
    backups = obs.owned.get("bucket/backup")
    return {
        "environment": obs.env,
        "provider": "aws",
        "endpoint": where,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # pgBackRest's off-site repository
        "backup_bucket": {"name": backups.id, "region": backups.region} if backups else None,
        "hosts": dict(sorted(hosts.items())),
    }


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
