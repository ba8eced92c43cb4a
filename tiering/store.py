"""The object store of the cold tier: S3/OSS through boto3 (with an endpoint URL), or a
local directory in the embedded default. Errors become PlatformErrors naming bucket and key."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from common.errors import PlatformError
from common.settings import Settings

MiB = 1024 * 1024
CREDENTIALS_FIX = (
    "give boto3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or an instance role)"
)


class ObjectStore(Protocol):
    def check(self) -> None: ...
    def put(self, path: Path, key: str) -> None: ...
    def keys(self, prefix: str) -> list[str]: ...
    def size(self, key: str) -> int: ...
    def delete(self, keys: list[str]) -> None: ...
    def clickhouse_params(self) -> dict[str, str] | None: ...


class LocalStore:
    """Objects as files under a directory; a file appears only once complete (rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PlatformError(
                f"cannot create the local cold tier {self.root}: {e}", "set LAMBDA_FEATURES_TIERING__LOCAL_DIR"
            ) from None

    def put(self, path: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)

    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def size(self, key: str) -> int:
        return (self.root / key).stat().st_size

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            (self.root / key).unlink(missing_ok=True)

    def clickhouse_params(self) -> dict[str, str] | None:
        return None


class S3Store:
    """A bucket through boto3; large objects go up as multipart uploads."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        t = settings.tiering
        assert t.bucket
        self.bucket = t.bucket
        self.endpoint = t.endpoint_url or "AWS"
        self.session = boto3.session.Session(region_name=t.region)
        self.client = self.session.client(
            "s3",
            endpoint_url=t.endpoint_url,
            config=Config(s3={"addressing_style": t.addressing_style}, retries={"max_attempts": 5, "mode": "standard"}),
        )
        self.transfer = TransferConfig(
            multipart_threshold=t.multipart_threshold_mb * MiB, multipart_chunksize=t.multipart_chunk_mb * MiB
        )

    @contextmanager
    def _errors(self, key: str = "") -> Iterator[None]:
        """Turn boto3's failures into one clear message naming the bucket and key."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        where = f"s3://{self.bucket}/{key}"
        try:
            yield
        except NoCredentialsError:
            raise PlatformError(f"no credentials for {where}", CREDENTIALS_FIX) from None
        except EndpointConnectionError as e:
            raise PlatformError(
                f"cannot reach the object store for {where}: {e}", "check LAMBDA_FEATURES_TIERING__ENDPOINT_URL"
            ) from None
        except (ClientError, S3UploadFailedError) as e:
            code = e.response["Error"].get("Code", "") if isinstance(e, ClientError) else str(e)
            if "NoSuchBucket" in code or code == "404" and not key:
                raise PlatformError(
                    f"bucket {self.bucket!r} does not exist at {self.endpoint}",
                    "create it, or fix LAMBDA_FEATURES_TIERING__BUCKET / LAMBDA_FEATURES_TIERING__ENDPOINT_URL",
                ) from None
            if any(c in code for c in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch")):
                raise PlatformError(f"access denied to {where} ({code})", CREDENTIALS_FIX + ", allowed on it") from None
            raise PlatformError(f"object store error on {where}: {e}") from None
        except BotoCoreError as e:
            raise PlatformError(f"object store error on {where}: {e}") from None

    def check(self) -> None:
        with self._errors():
            self.client.head_bucket(Bucket=self.bucket)

    def put(self, path: Path, key: str) -> None:
        with self._errors(key):
            self.client.upload_file(str(path), self.bucket, key, Config=self.transfer)

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        with self._errors(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)

    def size(self, key: str) -> int:
        with self._errors(key):
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            with self._errors(keys[i]):
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
                )

    def clickhouse_params(self) -> dict[str, str] | None:
        """Credentials from boto3's chain, for the ClickHouse named collection."""
        creds = self.session.get_credentials()
        if creds is None:
            raise PlatformError(f"no credentials for s3://{self.bucket}", CREDENTIALS_FIX)
        frozen = creds.get_frozen_credentials()
        params = {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key}
        if frozen.token:
            params["session_token"] = frozen.token
        return params


def open_store(settings: Settings) -> ObjectStore:
    """The configured store, checked: bucket reachable with these credentials."""
    store: ObjectStore = S3Store(settings) if settings.tiering.bucket else LocalStore(settings.cold_dir)
    store.check()
    return store
