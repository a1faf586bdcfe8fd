"""User-facing errors. Each renders as one clear line; the CLI never shows a traceback for them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MlchaosError(Exception):
    """Base class of every error meant for the user (one line, no traceback)."""


class ConfigError(MlchaosError):
    """Bad settings or environment variables."""


class SpecError(MlchaosError):
    """An experiment spec / params payload is invalid; carries every problem with its path."""

    def __init__(self, problems: list[str]):
        # one line each, whatever the user's keys or values contain
        self.problems = [one_line(p) for p in problems]
        super().__init__("; ".join(self.problems) if self.problems else "invalid spec")


class UnknownFaultError(MlchaosError):
    """A fault name that is not in the registry."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        suggestion = did_you_mean(name, known)
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        super().__init__(f"unknown fault {name!r}{hint}")


class SafetyError(MlchaosError):
    """A safety guard refused the action (allowlist, production guard, path escape)."""


class LeaseConflictError(MlchaosError):
    """Another active fault already holds a lease on an overlapping target."""


class TargetError(MlchaosError):
    """A target could not be parsed, reached or changed."""


class RestoreError(MlchaosError):
    """A restore did not reproduce the backed-up bytes."""


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """Closest known name to ``name``, if any is close enough."""
    matches = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line: control characters escaped, long text cut."""
    line = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
    return line if len(line) <= limit else line[: limit - 3] + "..."
