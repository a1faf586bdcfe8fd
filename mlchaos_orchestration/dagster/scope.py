"""Where a fault's ``at`` acts in a Dagster run, and the names of the asset graph (Dagster-free).

``at`` names the step BEFORE which a fault lands. In Dagster it may name:

* a **check** (e.g. the gate ``validate_features``): in-memory faults change the checked asset's
  value for every step that loads it in the run - the check *and* the assets downstream of it
  (Airflow gates pass their input on to training; Dagster checks do not, so faulting only the
  check's copy would let training see clean data and make a ``silent`` verdict a lie). A stored
  fault (one with a ``target``) lands once the checked asset's step finished;
* an **asset** (its key as ``a/b`` or its op name ``a__b``): in memory, the inputs that asset's
  step loads; stored, once every upstream asset of it that runs in this run finished;
* the **loaded asset** itself, written ``<asset>:input``: every load of that asset (in memory),
  or once that asset's step finished (stored).

A stored fault whose ``at`` has no producing step in the graph (a root asset, a check on a
source asset) is applied before the run, like a fault without ``at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mlchaos_orchestration.errors import SpecError, did_you_mean

INPUT_SUFFIX = ":input"


@dataclass(frozen=True)
class LoadSite:
    """One ``load_input`` call: the asset loaded and the op (step) loading it."""

    loaded_asset: str  # user string, e.g. "features" or "a/b"
    loading_op: str


@dataclass(frozen=True)
class Scopes:
    """What the Definitions hold, for ``at`` / gate / consumer names.

    ``checks``: check name -> checked asset (user string); ``ops``: asset key, check name or op
    name -> the op (step key) that computes it; ``parents``: asset -> its upstream assets;
    ``assets``: every asset key of the graph (executable or not)."""

    checks: Mapping[str, str] = field(default_factory=dict)
    ops: Mapping[str, str] = field(default_factory=dict)
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    assets: frozenset[str] = frozenset()

    def matches(self, at: str | None, site: LoadSite) -> bool:
        """Whether an in-memory fault ``at`` acts on this load."""
        if not at:
            return False
        if at.endswith(INPUT_SUFFIX):
            return at[: -len(INPUT_SUFFIX)] == site.loaded_asset
        if at in self.checks:
            return self.checks[at] == site.loaded_asset
        return at.replace("/", "__") == site.loading_op

    def op_for(self, name: str | None) -> str | None:
        """The op (step key) computing ``name`` (asset key, check name or op name)."""
        if not name:
            return None
        return self.ops.get(name) or self.ops.get(name.replace("/", "__"))

    def producers(self, at: str | None) -> tuple[str, ...]:
        """The ops after which a stored fault ``at`` lands (empty: apply before the run)."""
        if not at:
            return ()
        if at.endswith(INPUT_SUFFIX):
            assets: Iterable[str] = [at[: -len(INPUT_SUFFIX)]]
        elif at in self.checks:
            assets = [self.checks[at]]
        else:
            asset = self._asset_named(at)
            assets = self.parents.get(asset, ()) if asset else ()
        ops = [self.op_for(a) for a in assets]
        return tuple(sorted({op for op in ops if op}))

    def _asset_named(self, name: str) -> str | None:
        if name in self.assets:
            return name
        return next((a for a in self.assets if a.replace("/", "__") == name), None)

    def downstream_of(self, op: str) -> set[str]:
        """Assets downstream of what ``op`` computes (itself included)."""
        todo = [a for a in self.assets if self.ops.get(a) == op]
        seen: set[str] = set()
        while todo:
            asset = todo.pop()
            if asset in seen:
                continue
            seen.add(asset)
            todo.extend(a for a, ps in self.parents.items() if asset in ps)
        return seen

    def feeds(self, op: str, names: Iterable[str | None]) -> list[str]:
        """Which of ``names`` (gate check / consumer asset) read what ``op`` produces."""
        down = self.downstream_of(op)
        out = []
        for name in names:
            if not name or self.op_for(name) == op:
                continue
            asset = self.checks.get(name) or self._asset_named(name)
            if asset in down:
                out.append(name)
        return out

    def known(self) -> set[str]:
        """Every name ``at`` / gate / consumer may use."""
        return {*self.checks, *self.ops, *self.assets}

    def unknown(self, role: str, name: str | None) -> str | None:
        """One line naming ``name`` if the graph has no such check / asset / op, else None."""
        if not name or not (self.checks or self.ops or self.assets):
            return None
        bare = name[: -len(INPUT_SUFFIX)] if name.endswith(INPUT_SUFFIX) else name
        if bare in self.known() or self.op_for(bare):
            return None
        hint = did_you_mean(bare, sorted(self.known()))
        suffix = f" (did you mean {hint!r}?)" if hint else ""
        return f"{role} {name!r} is not an asset check, asset or op of these Definitions{suffix}"

    def check_names(
        self, *, gate: str | None, consumer: str | None, at: Iterable[str | None] = (), where: str
    ) -> None:
        """Raise :class:`SpecError` (one line per unknown name) for names not in the graph."""
        problems = [
            p
            for p in (
                self.unknown("gate", gate),
                self.unknown("consumer", consumer),
                *(self.unknown("at", a) for a in at),
            )
            if p
        ]
        if problems:
            raise SpecError([f"{where}: {p}" for p in problems])
