"""boto3 clients for one environment, and the SDK's failures as one-line errors.

The endpoint, credentials and profile come from the usual AWS environment variables and
files; ``endpoint_url`` points every client at another endpoint (a local one in tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class AwsError(RuntimeError):
    """The AWS provider cannot go on; ``str(err)`` is one line saying why and what to do."""


# APIs an endpoint may lack (a local one has no placement groups): the calls answer one of these
_MISSING_API = ("NotImplemented", "InvalidAction", "UnsupportedOperation")


@dataclass
class Session:
    endpoint_url: str | None = None
    profile: str | None = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            import boto3
            from botocore.config import Config

            try:
                session = boto3.session.Session(profile_name=self.profile, region_name=region)
            except Exception as exc:  # botocore's ProfileNotFound and kin
                raise AwsError(f"AWS profile {self.profile!r}: {exc}") from None
            config = Config(
                connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
            )
            self._clients[key] = session.client(service, endpoint_url=self.endpoint_url, config=config)
        return self._clients[key]

    def where(self) -> str:
        return self.endpoint_url or "AWS"


def missing_api(exc: BaseException) -> bool:
    """Whether ``exc`` says the endpoint does not implement the call."""
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ResponseParserError):  # a local endpoint answers unknown calls with a 500 page
        return True
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _MISSING_API


def error_code(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


@contextmanager
def translated(session: Session, doing: str) -> Iterator[None]:
    """Turn the SDK's errors raised while ``doing`` into one :class:`AwsError` line."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    try:
        yield
    except AwsError:
        raise
    except (NoCredentialsError, PartialCredentialsError):
        raise AwsError(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
            "(or --profile); nothing was changed"
        ) from None
    except EndpointConnectionError:
        raise AwsError(
            f"cannot reach {session.where()} while {doing}: check --endpoint-url and the "
            "network; nothing was changed"
        ) from None
    except NoRegionError:
        raise AwsError("no region: the topology names each region; this is a bug") from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = err.get("Code", "error"), err.get("Message", "").splitlines()[0:1]
        if code in (
            "AuthFailure",
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
        ):
            raise AwsError(
                f"AWS refused the credentials while {doing} ({code}); nothing was changed"
            ) from None
        raise AwsError(f"{doing}: {code}: {' '.join(message)}") from None
    except BotoCoreError as exc:
        raise AwsError(f"{doing}: {str(exc).splitlines()[0]}") from None


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out
