"""Generated CRDs on a real apiserver: it accepts them as structural, serves both versions, prunes unknown fields,
and `kubectl explain` shows the field docs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest

from kpack_core.apis.crdgen import KindInfo, PrinterColumn, crd, structural_schema
from kpack_core.envtest import ControlPlane
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource
from tests.integration.apis.toy_models import Gadget, OldGadget
from tests.integration.kubectl import kubectl

GADGETS = KindInfo(
    kind="Gadget",
    plural="gadgets",
    namespaced=True,
    models={"v1alpha1": OldGadget, "v1alpha2": Gadget},
    short_names=("gdg",),
    printer_columns=(PrinterColumn("LatestImage", "string", ".status.latestImage"),),
)


def test_schema_is_structural_in_shape() -> None:
    schema = structural_schema(Gadget)
    spec = schema["properties"]["spec"]
    assert spec["type"] == "object"
    assert spec["description"] == "What the gadget should be."
    props = spec["properties"]
    assert props["tag"] == {"type": "string", "description": "The image tag to build."}
    assert props["mode"]["enum"] == ["None", "BuildNumber"]
    assert props["cache"]["properties"]["size"]["x-kubernetes-int-or-string"] is True
    assert props["env"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["nodeSelector"]["additionalProperties"] == {"type": "string"}
    assert props["limit"] == {"type": "integer", "format": "int64", "description": "A history limit."}
    assert spec["required"] == ["tag"]
    text = json.dumps(schema)
    assert "$ref" not in text
    assert '"title"' not in text
    assert "anyOf" not in text.replace('"x-kubernetes-int-or-string"', "")


async def test_apiserver_accepts_and_serves_generated_crd(
    control_plane: ControlPlane, client: Client, namespace: str, tmp_path: Path
) -> None:
    manifest = crd(GADGETS, webhook=None)
    manifest["metadata"]["name"] = "gadgets.kpack.io"
    with contextlib.suppress(errors.AlreadyExistsError):
        await client.create(CUSTOM_RESOURCE_DEFINITIONS, manifest)
    deadline = time.monotonic() + 30
    gadgets = Resource("kpack.io", "v1alpha2", "gadgets", "Gadget")
    while True:
        try:
            await client.list(gadgets, namespace)
            break
        except errors.NotFoundError:
            assert time.monotonic() < deadline, "CRD not served"
            await asyncio.sleep(0.2)
    body = {
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "Gadget",
        "metadata": {"name": "g"},
        "spec": {"tag": "registry.example/app", "cache": {"size": "2G"}, "bogus": 1, "limit": 3},
    }
    created = await client.create(gadgets, body, namespace)
    assert "bogus" not in created["spec"], "unknown fields are pruned by a structural schema"
    assert created["spec"]["cache"] == {"size": "2G"}
    with pytest.raises(errors.InvalidError, match=r"spec\.limit"):
        await client.create(
            gadgets, {**body, "metadata": {"name": "h"}, "spec": {"tag": "x", "limit": "many"}}, namespace
        )
    out = await kubectl(control_plane, "explain", "gadgets.spec.cache", "--api-version=kpack.io/v1alpha2")
    assert "The build cache." in out
    assert "How big the cache volume is." in out
