"""Reading, rewriting and changing the signature in a model's ``MLmodel`` file (YAML).

MLflow keeps ``signature: {inputs: <JSON list>, outputs: <JSON list>, params: ...}`` there; each
JSON list holds column specs (``{"name": ..., "type": "double"}``) or tensor specs
(``{"type": "tensor", "tensor-spec": {"dtype": ..., "shape": ...}}``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import yaml

from mlchaos_orchestration.stores.local import _write_atomic

SchemaChange = Literal["output_type", "output_name", "drop_input"]
_SWAP = {"double": "string", "float": "string", "long": "string", "integer": "string"}
_TENSOR_SWAP = {"int64": "float64", "float64": "int64", "int32": "float32", "float32": "int32"}


def read_mlmodel(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def write_mlmodel(path: Path, content: dict[str, Any]) -> None:
    """Replace ``path`` by a new file (temp + rename: hard links to the old one keep it)."""
    _write_atomic(path, yaml.safe_dump(content, default_flow_style=False).encode())


def changed_signature(signature: dict[str, Any], change: SchemaChange) -> dict[str, Any]:
    """A copy of ``signature`` with its output types or names changed, or an input dropped."""
    side = "inputs" if change == "drop_input" else "outputs"
    specs = json.loads(signature.get(side) or "[]")
    if not specs:
        raise ValueError(f"the signature has no {side} to change")
    if change == "drop_input":
        specs = specs[:-1]
    for spec in specs if change != "drop_input" else []:
        if change == "output_name" and spec.get("name"):
            spec["name"] = f"{spec['name']}_v2"
        elif spec.get("type") == "tensor":
            tensor = spec["tensor-spec"]
            tensor["dtype"] = _TENSOR_SWAP.get(tensor.get("dtype"), "float64")
        else:
            spec["type"] = _SWAP.get(spec.get("type"), "double")
    return {**signature, side: json.dumps(specs)}


def link_copy(src: Path, dst: Path) -> None:
    """Copy a model directory by hard links (a plain copy across devices)."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)
