"""The checked-in CRDs and API reference are exactly what the generator makes of the models."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "hack" / "generate-crds.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_crds", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_files_match_the_models() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_check_names_a_file_that_drifted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = generator()
    monkeypatch.setattr(module, "TARGET", tmp_path / "crds")
    monkeypatch.setattr(module, "API_DOC", tmp_path / "api.md")
    monkeypatch.setattr(module, "WEBHOOK_CONFIGURATIONS", tmp_path / "webhook" / "webhook-configurations.yaml")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["generate-crds.py"])
    assert module.main() == 0
    images = tmp_path / "crds" / "images.kpack.io.yaml"
    images.write_text(images.read_text().replace("LatestImage", "Latest"))
    (tmp_path / "crds" / "gadgets.kpack.io.yaml").write_text("{}")
    monkeypatch.setattr(sys, "argv", ["generate-crds.py", "--check"])
    assert module.main() == 1


def test_every_kind_and_version_is_generated() -> None:
    from kpack_core.apis.kinds import KINDS

    assert sorted(k.kind for k in KINDS) == sorted(
        ["Image", "Build", "Builder", "ClusterBuilder", "ClusterStack", "ClusterStore", "SourceResolver"]
    )
    for path in (ROOT / "config" / "crds").glob("*.yaml"):
        text = path.read_text()
        assert "name: v1alpha1" in text
        assert "name: v1alpha2" in text
        assert "strategy: Webhook" in text
        assert "conversionReviewVersions" in text
