"""Test helpers shipped with the package: real throwaway servers for PostgreSQL, S3 and webhooks.

Only the standard library is imported here (psycopg2 is imported when a database is created).
"""

from __future__ import annotations

from mlchaos_orchestration.suite.receiver import ReceivedRequest, WebhookReceiver
from mlchaos_orchestration.testing.servers import (
    MotoS3Server,
    PostgresServer,
    ReceivedMail,
    ServerStartError,
    SmtpServer,
    find_postgres_bin,
    free_port,
)

__all__ = [
    "ReceivedMail",
    "SmtpServer",
    "ReceivedRequest",
    "WebhookReceiver",
    "MotoS3Server",
    "PostgresServer",
    "ReceivedRequest",
    "ServerStartError",
    "WebhookReceiver",
    "find_postgres_bin",
    "free_port",
]
