"""The layering contract: kpack_core knows nothing of the controllers or the webhooks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "kpack_core": ("kpack_controllers", "kpack_webhooks"),
    "kpack_controllers": ("kpack_webhooks",),
    "kpack_webhooks": ("kpack_controllers",),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_packages_import_only_downwards() -> None:
    violations = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in _imports(path):
                if name.split(".")[0] in forbidden:
                    violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert violations == []


def test_runtime_does_not_depend_on_api_types() -> None:
    runtime = ROOT / "kpack_core" / "runtime"
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(runtime.rglob("*.py"))
        for name in _imports(path)
        if name.startswith("kpack_core.apis")
    ]
    assert violations == []
