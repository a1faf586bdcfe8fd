"""Where finished suite reports are published: a local folder or ``s3://bucket/prefix``.

A published report is a folder named like the written report (its UTC timestamp) holding
``journal.json``, ``junit.xml``, ``report.html`` and ``published.json`` (the
:class:`PublishedReport` record, so that listing never reads a whole journal)::

    <location>/<name>/{journal.json, junit.xml, report.html, published.json}

S3 goes through boto3 with ``settings.s3_endpoint_url`` as endpoint (S3-compatible stores).
Importing this module is cheap (no boto3, no pandas, no plotting): the Resilience view and DAG
files use it.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlchaos_orchestration.errors import ConfigError

#: the files of a published report that :meth:`ReportsLocation.read` serves
REPORT_FILES = ("journal.json", "junit.xml", "report.html")
META_FILE = "published.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass
class PublishedReport:
    """One report in a location.

    ``summary``: ``{"runs": n, "verdicts": {verdict: count}, "resilience_score": float | None}``.
    ``target``: the pipeline(s) the suite ran against (comma-separated), None if unknown."""

    suite_id: str
    name: str
    created_at: float
    target: str | None
    files: list[str]
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_journal(cls, journal: dict[str, Any], name: str, files: list[str]) -> PublishedReport:
        runs = journal.get("runs") or []
        pipelines = list(dict.fromkeys(str(r["pipeline"]) for r in runs if r.get("pipeline")))
        return cls(
            suite_id=str(journal.get("suite_id") or ""),
            name=name,
            created_at=time.time(),
            target=", ".join(pipelines) or None,
            files=files,
            summary={
                "runs": len(runs),
                "verdicts": dict(Counter(str(r.get("verdict")) for r in runs)),
                "resilience_score": journal.get("resilience_score"),
            },
        )


class _Store(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...  # FileNotFoundError when missing
    def exists(self, key: str) -> bool: ...
    def folders(self) -> list[str]: ...


class _LocalStore:
    def __init__(self, root: Path):
        self.root = root

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def folders(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [p.name for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()]


class _S3Store:
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None):
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix, endpoint_url
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint_url)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"s3://{self.bucket}/{self._key(key)}") from None

    def exists(self, key: str) -> bool:
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(key), MaxKeys=1)
        return bool(found.get("KeyCount"))

    def folders(self) -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        names: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base, Delimiter="/"
        ):
            names += [p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return names


class ReportsLocation:
    """A local folder or ``s3://bucket/prefix`` holding published suite reports."""

    def __init__(self, url: str, *, s3_endpoint_url: str | None = None):
        self.url = url
        if url.startswith("s3://"):
            bucket, _, prefix = url[len("s3://") :].partition("/")
            if not bucket:
                raise ConfigError(f"reports location {url!r}: no bucket (s3://bucket/prefix)")
            self._store: _Store = _S3Store(bucket, prefix.strip("/"), s3_endpoint_url)
            self.root: Path | None = None
        elif "://" in url and not url.startswith("file://"):
            raise ConfigError(f"reports location {url!r}: use a folder or s3://bucket/prefix")
        else:
            self.root = Path(url.removeprefix("file://")).expanduser().resolve()
            self._store = _LocalStore(self.root)

    def __repr__(self) -> str:
        return f"ReportsLocation({self.url!r})"

    def publish(self, report_dir: Path, *, name: str | None = None) -> PublishedReport:
        """Copy ``journal.json`` / ``junit.xml`` / ``report.html`` of a written report folder
        (:func:`~mlchaos_orchestration.reporting.report.write_report`) here, under the folder's
        name (a free variant of it), or replacing report ``name``; a report already inside
        this (local) location is only indexed."""
        report_dir = Path(report_dir)
        journal_path = report_dir / "journal.json"
        if not journal_path.is_file():
            raise FileNotFoundError(f"{report_dir}: no journal.json (not a written report)")
        files = [f for f in REPORT_FILES if (report_dir / f).is_file()]
        in_place = self.root is not None and report_dir.resolve().parent == self.root
        if name is not None and not _NAME.fullmatch(name):
            raise ValueError(f"{name!r}: not a report name")
        if in_place:
            name = report_dir.name
        name = name or self._free_name(report_dir.name)
        journal = json.loads(journal_path.read_text(encoding="utf-8"))
        record = PublishedReport.from_journal(journal, name, files)
        if not in_place:
            for file in files:
                self._store.put(f"{name}/{file}", (report_dir / file).read_bytes())
        self._store.put(f"{name}/{META_FILE}", json.dumps(asdict(record), indent=2).encode())
        return record

    def _free_name(self, name: str) -> str:
        candidate, n = name, 1
        while self._store.exists(f"{candidate}/"):
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def list(self, limit: int = 50) -> list[PublishedReport]:
        """Published reports, newest first (at most ``limit``); folders without a record are
        described from their journal, anything else is skipped."""
        found = []
        for name in self._store.folders():
            if not _NAME.fullmatch(name):
                continue
            record = self._record(name)
            if record is not None:
                found.append(record)
        found.sort(key=lambda r: (r.created_at, r.name), reverse=True)
        return found[:limit]

    def _record(self, name: str) -> PublishedReport | None:
        try:
            return PublishedReport(**json.loads(self._store.get(f"{name}/{META_FILE}")))
        except FileNotFoundError:
            pass
        except (ValueError, TypeError):
            return None
        try:  # written in place by ``write_report`` but never published: read the journal
            journal = json.loads(self._store.get(f"{name}/journal.json"))
        except (FileNotFoundError, ValueError):
            return None
        record = PublishedReport.from_journal(journal, name, [])
        record.files = [f for f in REPORT_FILES if self._store.exists(f"{name}/{f}")]
        record.created_at = _journal_time(journal) or record.created_at
        return record

    def read(self, name: str, file: str) -> bytes:
        """The bytes of ``file`` (one of :data:`REPORT_FILES`) of report ``name``.

        ValueError for any other file or a malformed name; FileNotFoundError if absent."""
        if file not in REPORT_FILES:
            raise ValueError(f"{file!r}: not a report file (one of {', '.join(REPORT_FILES)})")
        if not _NAME.fullmatch(name) or ".." in name:
            raise ValueError(f"{name!r}: not a report name")
        return self._store.get(f"{name}/{file}")


def _journal_time(journal: dict[str, Any]) -> float | None:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(str(journal.get("generated_at"))).timestamp()
    except ValueError:
        return None


def reports_location(url: str | None = None) -> ReportsLocation | None:
    """The location ``url`` names, default ``settings.reports_location``; None if neither."""
    from mlchaos_orchestration.settings import get_settings

    settings = get_settings()
    url = url or settings.reports_location
    if not url:
        return None
    return ReportsLocation(url, s3_endpoint_url=settings.s3_endpoint_url)


def publish_report(report_dir: Path, url: str | None = None) -> PublishedReport | None:
    """Publish a written report to the configured location (None if none is configured)."""
    location = reports_location(url)
    return location.publish(report_dir) if location is not None else None


__all__ = [
    "META_FILE",
    "REPORT_FILES",
    "PublishedReport",
    "ReportsLocation",
    "publish_report",
    "reports_location",
]
