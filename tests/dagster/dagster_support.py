"""Helpers shared by the Dagster adapter tests (not fixtures)."""

from __future__ import annotations

import hashlib
from pathlib import Path

DS = "2026-11-20"


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
