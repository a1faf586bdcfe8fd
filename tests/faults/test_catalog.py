"""The fault catalog is built from the ``mlchaos.faults`` entry points: built-ins and a third-party
distribution alike, each with its origin; a broken entry point is reported, never fatal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

THIRD_PARTY = '''
from typing import ClassVar
from mlchaos_orchestration.faults.data.common import ColumnsFault


class Negate(ColumnsFault):
    """Negate a sampled fraction of a numeric column (a sign-convention bug upstream)."""

    name: ClassVar[str] = "negate"

    def _apply(self, frame, rng):
        from mlchaos_orchestration.faults.base import DataFaultResult

        rows = self.sample_rows(len(frame), rng)
        out = frame.copy()
        for column in self.columns:
            out.loc[out.index[rows], column] = -out[column].to_numpy()[rows]
        return DataFaultResult(out, rows, list(self.columns))
'''


def _distribution(site: Path, name: str, entry_points: str, module: str = "") -> None:
    """A minimal installed distribution (dist-info with entry points) on ``site``."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[mlchaos.faults]\n{entry_points}\n")
    if module:
        (site / f"{name.replace('-', '_')}.py").write_text(module)


def _mlchaos(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); "
        "from mlchaos_orchestration.cli.commands import main; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_a_third_party_fault_registers_through_the_entry_point(tmp_path: Path) -> None:
    _distribution(tmp_path, "acme-faults", "negate = acme_faults:Negate", THIRD_PARTY)
    out = _mlchaos(tmp_path, "faults", "list", "--json")
    assert out.returncode == 0, out.stderr
    faults = {f["name"]: f for f in json.loads(out.stdout)}
    assert faults["negate"]["origin"] == "acme-faults"
    assert faults["nulls"]["origin"] == "mlchaos-orchestration"
    assert len(faults) == 21  # the 20 built-ins + negate

    spec = tmp_path / "exp.yaml"
    spec.write_text(
        "version: 1\nexperiments:\n  - name: neg\n    faults:\n"
        "      - {fault: negate, columns: [amount], fraction: 0.5}\n"
    )
    assert _mlchaos(tmp_path, "validate", str(spec)).returncode == 0


def test_a_broken_entry_point_is_reported_and_hides_nothing(tmp_path: Path) -> None:
    _distribution(tmp_path, "broken-faults", "oops = broken_faults_missing:Nope")
    out = _mlchaos(tmp_path, "faults", "list")
    assert out.returncode == 0
    assert "fault entry point 'oops' did not load" in out.stderr
    assert "ModuleNotFoundError" in out.stderr
    assert "nulls" in out.stdout and "    from: mlchaos-orchestration" in out.stdout
