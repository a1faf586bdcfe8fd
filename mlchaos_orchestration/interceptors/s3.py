"""botocore backend: seeded S3 throttling, 503s, timeouts and error responses for one prefix.

Mechanism (botocore's event system): a handler on ``before-send.s3`` of a client's
``meta.events`` runs before every HTTP attempt, inside botocore's retry loop. To fail an attempt
it returns a fake :class:`~botocore.awsrequest.AWSResponse` (status + S3 XML error body) instead
of sending, or raises :class:`~botocore.exceptions.ReadTimeoutError`. botocore's real error
parsing and retry policy then run: callers see ``ClientError`` (e.g. ``SlowDown``) or the
timeout after the client's retries, or success when a retry passes.

Coverage: while at least one ``install()``-ed S3 hook is active, ``botocore.session.Session.
create_client`` is wrapped so every *new* client (boto3.client/resource, any session) gets the
dispatcher handler; when the last S3 hook is removed the original method is restored and the
dispatcher is unregistered from those clients again, so a dormant process pays nothing per
request. A client that existed before install is reached with
:func:`mlchaos_orchestration.interceptors.attach`.

Not reached: aiobotocore clients (s3fs, hence pandas / fsspec / dask ``s3://`` paths) and
pyarrow's own S3 filesystem; :data:`~mlchaos_orchestration.interceptors.registry.CLIENTS` says
so in every verdict's evidence. (aiobotocore pins botocore ranges none of which holds the
pinned botocore 1.44.5, so s3fs does not install with this stack's constraints.)
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from mlchaos_orchestration.interceptors.registry import Injector

EVENT = "before-send.s3"
DISPATCH_ID = "mlchaos-s3-dispatch"
FAILURES: dict[str, tuple[int, str, str]] = {
    "throttle": (503, "SlowDown", "Please reduce your request rate."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
}
KINDS_OF_FAILURE = (*FAILURES, "timeout")

_lock = threading.Lock()
_rules: dict[int, S3Rule] = {}
#: the rules as one immutable snapshot, replaced on install/remove: the request path reads it
#: without taking the lock
_snapshot: tuple[S3Rule, ...] = ()
#: clients given the dispatcher, unregistered again when the last rule goes
_enabled: weakref.WeakSet[Any] = weakref.WeakSet()
_original_create_client: Callable[..., Any] | None = None


def problems(spec: dict[str, Any]) -> list[str]:
    """Problems with an ``s3_failure`` / ``s3_error`` spec (empty if valid)."""
    kind = spec["kind"]
    allowed = {"kind", "bucket", "prefix", "rate", "latency_ms", "jitter_ms", "seed"}
    allowed |= {"failure"} if kind == "s3_failure" else {"code", "status"}
    out = [f"{kind}: unknown field {name!r}" for name in sorted(set(spec) - allowed)]
    if not isinstance(spec.get("bucket"), str) or not spec["bucket"] or "/" in spec["bucket"]:
        out.append(f"{kind}.bucket: required, a bucket name, got {spec.get('bucket')!r}")
    if not isinstance(spec.get("prefix", ""), str):
        out.append(f"{kind}.prefix: must be a string")
    if kind == "s3_failure" and spec.get("failure", "throttle") not in KINDS_OF_FAILURE:
        out.append(f"s3_failure.failure: must be one of {', '.join(KINDS_OF_FAILURE)}")
    if kind == "s3_error":
        status = spec.get("status", 500)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            out.append(f"s3_error.status: must be an HTTP error status 400-599, got {status!r}")
        if not isinstance(spec.get("code", "InternalError"), str):
            out.append("s3_error.code: must be a string")
    return out


def request_key(url: str, bucket: str) -> str | None:
    """Object key (or listing prefix) a request URL addresses in ``bucket``; None if elsewhere.

    Handles path-style (``http://host/bucket/key``) and virtual-host style
    (``https://bucket.host/key``) URLs; a listing's ``prefix`` query stands in for the key.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.lstrip("/")
    if host.startswith(bucket.lower() + "."):
        key = path
    else:
        first, _, rest = path.partition("/")
        if unquote(first) != bucket:
            return None
        key = rest
    key = unquote(key)
    if not key:
        key = parse_qs(parts.query).get("prefix", [""])[0]
    return key


class _Body:
    """Minimal raw stream for :class:`AWSResponse` (botocore reads ``raw.stream()``)."""

    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any, **__: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def error_response(url: str, status: int, code: str, message: str) -> AWSResponse:
    """An S3-shaped error response, parsed by botocore exactly like a real one."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        "<RequestId>mlchaos</RequestId><HostId>mlchaos</HostId></Error>"
    ).encode()
    headers = {
        "Content-Type": "application/xml",
        "Content-Length": str(len(body)),
        "x-amz-request-id": "mlchaos",
    }
    return AWSResponse(url, status, headers, _Body(body))


class S3Rule:
    """One S3 spec: which requests it covers and how an injected failure looks."""

    def __init__(self, spec: dict[str, Any], injector: Injector):
        self.bucket = spec["bucket"]
        self._needle = self.bucket.lower()
        self.prefix = spec.get("prefix", "")
        self.injector = injector
        if spec["kind"] == "s3_error":
            self.failure = "error"
            self.status = int(spec.get("status", 500))
            self.code = str(spec.get("code", "InternalError"))
            self.message = f"mlchaos: injected {self.code}"
        else:
            self.failure = spec.get("failure", "throttle")
            if self.failure in FAILURES:
                self.status, self.code, self.message = FAILURES[self.failure]

    def respond(self, request: Any) -> AWSResponse | None:
        """Fake response for a failing attempt, None to let it through; may raise a timeout."""
        if self._needle not in request.url.lower():  # bucket names are never percent-encoded
            return None
        key = request_key(request.url, self.bucket)
        if key is None or not key.startswith(self.prefix):
            return None
        if not self.injector.roll("request"):
            return None
        if self.failure == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        return error_response(request.url, self.status, self.code, self.message)


def _dispatch(request: Any, **_: Any) -> AWSResponse | None:
    """``before-send.s3`` handler consulting every installed (process-wide) rule."""
    for rule in _snapshot:
        response = rule.respond(request)
        if response is not None:
            return response
    return None


def enable(client: Any) -> None:
    """Give ``client`` the process-wide dispatcher (a no-op while no S3 hook is installed)."""
    client.meta.events.register(EVENT, _dispatch, unique_id=DISPATCH_ID)
    _enabled.add(client)


def _disable_all() -> None:
    """Unregister the dispatcher from every client :func:`enable` gave it to."""
    for client in list(_enabled):
        client.meta.events.unregister(EVENT, unique_id=DISPATCH_ID)
    _enabled.clear()


def _wrap_create_client() -> None:
    global _original_create_client
    if _original_create_client is not None:
        return
    original = botocore.session.Session.create_client

    @functools.wraps(original)
    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        enable(client)
        return client

    _original_create_client = original
    botocore.session.Session.create_client = create_client


def _unwrap_create_client() -> None:
    global _original_create_client
    if _original_create_client is None:
        return
    current = botocore.session.Session.__dict__.get("create_client")
    if getattr(current, "__wrapped__", None) is _original_create_client:
        botocore.session.Session.create_client = _original_create_client
        _original_create_client = None


def install(spec: dict[str, Any], injector: Injector) -> Callable[[], None]:
    """Apply ``spec`` to every client created from now on; returns the remover."""
    global _snapshot
    rule = S3Rule(spec, injector)
    with _lock:
        _rules[id(rule)] = rule
        _snapshot = tuple(_rules.values())
        _wrap_create_client()

    def uninstall() -> None:
        global _snapshot
        with _lock:
            _rules.pop(id(rule), None)
            _snapshot = tuple(_rules.values())
            if not _rules:
                _unwrap_create_client()
                _disable_all()

    return uninstall


def attach(client: Any, spec: dict[str, Any], injector: Injector) -> Callable[[], None]:
    """Apply ``spec`` to ``client`` only; returns the remover."""
    rule = S3Rule(spec, injector)
    unique_id = f"mlchaos-s3-{id(rule):x}"

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        return rule.respond(request)

    client.meta.events.register(EVENT, handler, unique_id=unique_id)
    ref = weakref.ref(client)

    def uninstall() -> None:
        target = ref()
        if target is not None:
            target.meta.events.unregister(EVENT, unique_id=unique_id)

    return uninstall
