"""The generated kpack CRDs on a real apiserver: accepted as structural, every version served, field docs shown by
`kubectl explain`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from kpack_core.apis.crdgen import crd
from kpack_core.apis.kinds import KINDS
from kpack_core.envtest import ControlPlane
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource
from tests.integration.kubectl import kubectl


async def test_every_generated_crd_is_accepted_and_served(tmp_path: Path) -> None:
    # A control plane of its own: the webhook tests install the same CRDs with a conversion webhook.
    async with (
        ControlPlane(tmp_path / "plane") as plane,
        await Client.from_kubeconfig(str(plane.kubeconfig_path)) as client,
    ):
        for info in KINDS:
            await client.create(CUSTOM_RESOURCE_DEFINITIONS, crd(info, webhook=None))
        deadline = time.monotonic() + 60
        for info in KINDS:
            for version in info.models:
                resource = Resource("kpack.io", version, info.plural, info.kind, info.namespaced)
                while True:
                    try:
                        await client.list(resource, "default" if info.namespaced else None)
                        break
                    except errors.NotFoundError:
                        assert time.monotonic() < deadline, f"{info.crd_name} {version} not served"
                        await asyncio.sleep(0.2)
        explained = await kubectl(plane, "explain", "images.spec.cache", "--api-version=kpack.io/v1alpha2")
        assert "volume" in explained
        assert "registry" in explained
        columns = await kubectl(plane, "get", "images", "-n", "default", "-o", "wide")
        assert "No resources" in columns
