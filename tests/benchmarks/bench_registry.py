"""Registry client throughput against skopeo, on the TLS + bearer-token test registry, in the same run.

* Push: a 100 MB random (incompressible, gzip-framed) layer, its config and manifest to a fresh repository, by our
  `RegistryClient.push_image` and by `skopeo copy dir:<same image> docker://…`. Every round makes new random data
  and new repositories, so neither client can skip or mount a blob the registry already has. MB/s, median of rounds
  alternating ours and skopeo.
* Resolve: tags to manifest digests. Ours: `get_digest` of 1,000 tags, 8 at a time on one client (one token per
  repository, reused, as a controller would). skopeo: `skopeo inspect --raw` of 100 of the same tags, 8 processes at
  a time (each process is a fresh client: TLS handshake and token per tag; that is what a user of skopeo pays).
  Tags per second.

Target (from the issue): ≥ 0.8 x skopeo's throughput for both. Printed, never asserted; only correctness is (every
digest equals the pushed one, the pushed image reads back).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import statistics
import time
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import TypeVar

import orjson
import pytest

from kpack_core.envtest.registry import Registry
from kpack_core.registry import Credentials, RegistryClient, RegistryOptions, StaticKeychain, mediatypes
from kpack_core.registry.manifest import Descriptor, ImageManifest, RawManifest

pytestmark = pytest.mark.integration

LAYER_BYTES = 100 * 1024 * 1024
PUSH_ROUNDS = 3
TAGS = 1_000
SKOPEO_TAGS = 100
CONCURRENCY = 8
TARGET_RATIO = 0.8
BASELINE = "skopeo"
T = TypeVar("T")


def random_image(size: int = LAYER_BYTES) -> tuple[RawManifest, dict[str, bytes]]:
    """An image of one layer: a real gzip stream of `size` random bytes (skopeo would compress a layer that only
    claims to be gzip)."""
    content = os.urandom(size)
    layer = gzip.compress(content, compresslevel=1, mtime=0)
    config = orjson.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(content).hexdigest()]},
        }
    )
    layer_descriptor = Descriptor(mediatypes.DOCKER_LAYER, "sha256:" + hashlib.sha256(layer).hexdigest(), len(layer))
    config_descriptor = Descriptor.of(config, mediatypes.DOCKER_CONFIG)
    manifest = ImageManifest(
        config=config_descriptor, layers=(layer_descriptor,), media_type=mediatypes.DOCKER_MANIFEST
    )
    return RawManifest.of(manifest), {layer_descriptor.digest: layer, config_descriptor.digest: config}


def write_dir_image(directory: Path, raw: RawManifest, blobs: dict[str, bytes]) -> None:
    """The image in skopeo's `dir:` layout (version 1.1): manifest.json and one file per blob, named by its hex."""
    directory.mkdir(parents=True)
    (directory / "version").write_text("Directory Transport Version: 1.1\n")
    (directory / "manifest.json").write_bytes(raw.content)
    for digest, data in blobs.items():
        (directory / digest.removeprefix("sha256:")).write_bytes(data)


def skopeo_auth(registry: Registry, workdir: Path) -> list[str]:
    certs = workdir / "certs"
    certs.mkdir(exist_ok=True)
    (certs / "ca.crt").write_bytes(registry.ca_pem)
    return [f"--creds={registry.username}:{registry.password}", f"--cert-dir={certs}"]


async def skopeo(home: Path, *args: str) -> bytes:
    # A HOME of its own: skopeo's blob-info cache lives there, so it remembers no blob from an earlier round.
    process = await asyncio.create_subprocess_exec(
        "skopeo", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout


def client_for(registry: Registry) -> RegistryClient:
    keychain = StaticKeychain({registry.host: Credentials(registry.username, registry.password)})
    return RegistryClient(keychain, RegistryOptions(ca_pem=registry.ca_pem))


async def test_push_and_resolve_against_skopeo(token_registry: Registry, tmp_path: Path) -> None:
    registry = token_registry
    auth = skopeo_auth(registry, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    rates: dict[str, list[float]] = {"ours": [], "skopeo": []}
    for round_ in range(PUSH_ROUNDS):
        for name in ("ours", "skopeo"):
            raw, blobs = await asyncio.to_thread(random_image)
            target = f"{registry.host}/bench/push-{name}-{round_}:latest"
            if name == "ours":
                started = time.perf_counter()
                async with client_for(registry) as client:
                    await client.push_image(target, raw, blobs)
                elapsed = time.perf_counter() - started
            else:
                source = tmp_path / f"dir-{round_}"
                await asyncio.to_thread(write_dir_image, source, raw, blobs)
                started = time.perf_counter()
                await skopeo(home, "copy", "--quiet", *[a.replace("--", "--dest-", 1) for a in auth], f"dir:{source}",
                             f"docker://{target}")  # fmt: skip
                elapsed = time.perf_counter() - started
                await asyncio.to_thread(lambda path=source: [p.unlink() for p in path.iterdir()])
            async with client_for(registry) as client:
                pushed = await client.get_manifest(target)
                assert pushed.digest == raw.digest, (name, pushed.content[:500], raw.content[:500])
            rates[name].append(LAYER_BYTES / 1e6 / elapsed)
            del blobs

    # 1,000 tags of one small image.
    raw, blobs = random_image(1024)
    repository = f"{registry.host}/bench/tags"
    async with client_for(registry) as client:
        await client.push_image(f"{repository}:t0", raw, blobs)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def tag(index: int) -> None:
            async with limit:
                await client.put_manifest(f"{repository}:t{index}", raw)

        await asyncio.gather(*(tag(i) for i in range(1, TAGS)))

    resolve_rates: dict[str, list[float]] = {"ours": [], "skopeo": []}
    ours_tags = [f"{repository}:t{i}" for i in range(TAGS)]
    skopeo_tags = ours_tags[:: TAGS // SKOPEO_TAGS]
    for _ in range(2):
        async with client_for(registry) as client:
            started = time.perf_counter()
            digests = await bounded(client.get_digest(tag) for tag in ours_tags)
            resolve_rates["ours"].append(TAGS / (time.perf_counter() - started))
        assert set(digests) == {raw.digest}
        started = time.perf_counter()
        manifests = await bounded(skopeo(home, "inspect", "--raw", *auth, f"docker://{tag}") for tag in skopeo_tags)
        resolve_rates["skopeo"].append(len(skopeo_tags) / (time.perf_counter() - started))
        assert {"sha256:" + hashlib.sha256(m).hexdigest() for m in manifests} == {raw.digest}

    print()
    for name, values in rates.items():
        print(f"registry bench: push 100 MB, {name}: " + ", ".join(f"{v:.0f}" for v in values) + " MB/s")
    for name, values in resolve_rates.items():
        print(f"registry bench: resolve tags, {name}: " + ", ".join(f"{v:.0f}" for v in values) + " tags/s")
    print(f"registry bench: target >= {TARGET_RATIO} x {BASELINE} for both")
    push = statistics.median(rates["ours"]), statistics.median(rates["skopeo"])
    resolve = statistics.median(resolve_rates["ours"]), statistics.median(resolve_rates["skopeo"])
    print(f"bench: registry_push_100mb: {push[0]:.0f} MB/s ({push[0] / push[1]:.2f} × {BASELINE} copy)")  # noqa: RUF001
    print(
        f"bench: registry_resolve_tags: {resolve[0]:.0f} tags/s ({resolve[0] / resolve[1]:.2f} × {BASELINE} inspect)"  # noqa: RUF001
    )


async def bounded(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await every call, `CONCURRENCY` at a time, in order."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Awaitable[T]) -> T:
        async with limit:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))
