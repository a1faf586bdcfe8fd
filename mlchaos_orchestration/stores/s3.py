"""S3 objects and prefixes: server-side backup copies inside the same bucket.

Target ``s3://bucket/key`` is one object; ``s3://bucket/prefix/`` (trailing slash) or
``s3://bucket`` is every object under the prefix. A backup lives under
``s3://bucket/.mlchaos-backups/<backup_id>/``: ``objects/<key>`` copies, then ``manifest.json``
written last (its presence marks the backup complete). Listings never include the backup prefix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from mlchaos_orchestration.core.targets import Target
from mlchaos_orchestration.errors import RestoreError, TargetError
from mlchaos_orchestration.stores.base import Store

BACKUP_PREFIX = ".mlchaos-backups/"
_DELETE_BATCH = 1000


def _is_prefix(target: Target) -> bool:
    return target.key == "" or target.key.endswith("/")


class S3Store(Store):
    """boto3-backed store; ``endpoint_url`` points at S3-compatible servers (moto, MinIO)."""

    page_size = 1000  # keys per listing request
    workers = 8  # parallel copy / hash requests

    def __init__(self, endpoint_url: str | None = None, client: Any = None):
        self.endpoint_url = endpoint_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint_url)
        return self._client

    # ------------------------------------------------------------------ contract
    def exists(self, target: Target) -> bool:
        return bool(self.keys(target))

    def checksum(self, target: Target) -> dict[str, str]:
        return self._parallel(lambda k: self._sha256(target.bucket, k), self.keys(target))

    def backup(self, target: Target, backup_id: str) -> dict[str, Any]:
        bucket, prefix = target.bucket, self._backup_prefix(backup_id)
        manifest = self._manifest(bucket, prefix)
        if manifest is not None:  # completed by an earlier call: never overwrite it
            return self._ref(bucket, prefix, manifest)
        self.discard_partial(target, backup_id)

        def copy_one(key: str) -> str:
            self._copy(bucket, key, prefix + "objects/" + key)
            return self._sha256(bucket, prefix + "objects/" + key)

        objects = self._parallel(copy_one, self.keys(target))
        manifest = {"target": target.location, "objects": objects}
        self.write(bucket, prefix + "manifest.json", json.dumps(manifest, sort_keys=True).encode())
        return self._ref(bucket, prefix, manifest)

    def restore(self, target: Target, ref: dict[str, Any]) -> None:
        bucket, prefix = ref["bucket"], ref["prefix"]
        manifest = self._manifest(bucket, prefix)
        if manifest is None:
            if self.checksum(target) == ref.get("objects"):
                return  # already restored and discarded
            raise RestoreError(f"backup {prefix} of {target.location} is missing or incomplete")
        wanted: dict[str, str] = manifest["objects"]
        self.delete(bucket, [k for k in self.keys(target) if k not in wanted])

        def copy_back(key: str) -> bool:
            self._copy(bucket, prefix + "objects/" + key, key)
            return self._sha256(bucket, key) == wanted[key]

        for key, same in self._parallel(copy_back, list(wanted)).items():
            if not same:
                raise RestoreError(f"s3://{bucket}/{key}: restored bytes differ from the backup")

    def discard(self, ref: dict[str, Any]) -> None:
        self.delete(ref["bucket"], self._list(ref["bucket"], ref["prefix"], own=True))

    def discard_partial(self, target: Target, backup_id: str) -> None:
        """Drop an incomplete backup copy (a crash mid-backup)."""
        prefix = self._backup_prefix(backup_id)
        self.delete(target.bucket, self._list(target.bucket, prefix, own=True))

    # ------------------------------------------------------------------ mutations used by faults
    def keys(self, target: Target) -> list[str]:
        """Keys the target covers (never backup copies), sorted."""
        self._check(target)
        if _is_prefix(target):
            return sorted(self._list(target.bucket, target.key))
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=target.bucket, Key=target.key)
        except ClientError as exc:
            if _status(exc) == 404:
                return []
            raise TargetError(f"{target.location}: {_message(exc)}") from None
        return [target.key]

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        """Delete ``keys`` in batches (missing keys are fine)."""
        keys = list(keys)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + _DELETE_BATCH]]
            result = self.client.delete_objects(
                Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if result.get("Errors"):
                first = result["Errors"][0]
                raise TargetError(f"s3://{bucket}/{first.get('Key')}: {first.get('Message')}")

    def copy(self, bucket: str, src_key: str, dst_key: str) -> None:
        """Server-side copy within ``bucket`` (metadata kept)."""
        self._copy(bucket, src_key, dst_key)

    def remove(self, target: Target) -> None:
        """Delete every object of the target."""
        self.delete(target.bucket, self.keys(target))

    def rewrite(self, target: Target, transform: Callable[[str, bytes], bytes]) -> int:
        """Replace each object's bytes by ``transform(key, data)``; return the number of objects."""
        keys = self.keys(target)
        for key in keys:
            self.write(target.bucket, key, transform(key, self.read(target.bucket, key)))
        return len(keys)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check(target: Target) -> None:
        if target.kind != "s3":
            raise TargetError(f"not an S3 target: {target.describe()}")
        if target.key.startswith(BACKUP_PREFIX):
            raise TargetError(f"{target.location}: the backup prefix is not a valid target")

    @staticmethod
    def _backup_prefix(backup_id: str) -> str:
        if not backup_id or "/" in backup_id:
            raise TargetError(f"invalid backup id {backup_id!r}")
        return f"{BACKUP_PREFIX}{backup_id}/"

    def _parallel(self, fn: Callable[[str], Any], keys: list[str]) -> dict[str, Any]:
        """``{k: fn(k)}`` in key order, on a few threads (boto3 clients are thread-safe)."""
        if len(keys) <= 1:
            return {k: fn(k) for k in keys}
        from concurrent.futures import ThreadPoolExecutor

        _ = self.client  # create the client once, before the threads share it
        with ThreadPoolExecutor(max_workers=min(self.workers, len(keys))) as pool:
            return dict(zip(keys, pool.map(fn, keys), strict=True))

    @staticmethod
    def _ref(bucket: str, prefix: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "s3", "bucket": bucket, "prefix": prefix, "objects": manifest["objects"]}

    def _list(self, bucket: str, prefix: str, own: bool = False) -> list[str]:
        """Keys under ``prefix``; backup copies are skipped unless ``own`` (listing a backup)."""
        from botocore.exceptions import ClientError

        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        except ClientError as exc:
            raise TargetError(f"s3://{bucket}/{prefix}: {_message(exc)}") from None
        if own:
            return keys
        return [k for k in keys if not k.startswith(BACKUP_PREFIX)]

    def _manifest(self, bucket: str, prefix: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return json.loads(self.read(bucket, prefix + "manifest.json"))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise TargetError(f"s3://{bucket}/{prefix}: {_message(exc)}") from None

    def _copy(self, bucket: str, src_key: str, dst_key: str) -> None:
        self.client.copy_object(
            Bucket=bucket, Key=dst_key, CopySource={"Bucket": bucket, "Key": src_key}
        )

    def _sha256(self, bucket: str, key: str) -> str:
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _message(exc: Any) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
