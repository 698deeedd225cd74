"""Blob URL checks, registry reference checks, git input checks, and the status form of every result."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kpack_core.registry import RegistryClient
from kpack_core.source import (
    GitResolver,
    GitResolverOptions,
    GitSourceType,
    InvalidSourceError,
    ResolvedBlob,
    ResolvedGit,
    ResolvedRegistry,
    resolve_blob,
    resolve_registry_image,
)
from kpack_core.source.git import check_revision


@pytest.mark.parametrize(
    "url",
    ["https://storage.example/app.tar.gz", "http://127.0.0.1:9000/b/app.zip?X-Token=abc", "HTTPS://host/app.jar"],
)
def test_blob_urls_pass_through(url: str) -> None:
    assert resolve_blob(url, "web") == ResolvedBlob(url=url, sub_path="web")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("https://storage.example/a b.zip", "whitespace"),
        ("ftp://storage.example/app.zip", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("storage.example/app.zip", "only http and https"),
        ("https:///app.zip", "no host"),
        ("https://storage.example:70000/app.zip", "out of range"),
        ("http://[::1/app.zip", "Invalid IPv6 URL"),
    ],
)
def test_bad_blob_urls_name_the_field(url: str, problem: str) -> None:
    with pytest.raises(InvalidSourceError, match=r"^spec\.source\.blob\.url: ") as caught:
        resolve_blob(url)
    assert problem in caught.value.problem


def test_blob_error_masks_url_credentials() -> None:
    with pytest.raises(InvalidSourceError) as caught:
        resolve_blob("ftp://user:hunter2@storage.example/app.zip")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("image", ["", "Registry.example/UPPER", "registry.example/app@sha256:short"])
async def test_unparsable_source_image_names_the_field(image: str) -> None:
    async with RegistryClient() as client:
        with pytest.raises(InvalidSourceError, match=r"^spec\.source\.registry\.image: "):
            await resolve_registry_image(client, image)


@pytest.mark.parametrize(
    ("revision", "problem"),
    [
        ("", "empty"),
        (" main", "whitespace"),
        ("--upload-pack=evil", "must not start with '-'"),
        ("main~1", "cannot hold"),
        ("main^{}", "cannot hold"),
        ("a:b", "cannot hold"),
        ("ma\nin", "cannot hold"),
    ],
)
def test_bad_revisions_name_the_field(revision: str, problem: str) -> None:
    with pytest.raises(InvalidSourceError, match=r"^spec\.source\.git\.revision: ") as caught:
        check_revision(revision)
    assert problem in caught.value.problem


async def test_git_resolver_checks_input_before_any_network(tmp_path: Path) -> None:
    resolver = GitResolver(tmp_path)
    with pytest.raises(InvalidSourceError, match=r"spec\.source\.git\.url"):
        await resolver.resolve("file:///srv/app.git", "main")
    with pytest.raises(InvalidSourceError, match=r"spec\.source\.git\.revision"):
        await resolver.resolve("https://git.example/app.git", "-x")


def test_resolved_git_status_form() -> None:
    resolved = ResolvedGit("https://git.example/app", "a" * 40, GitSourceType.BRANCH, "api", "refs/heads/main")
    assert resolved.to_api().to_json() == {
        "git": {"url": "https://git.example/app", "revision": "a" * 40, "type": "Branch", "subPath": "api"}
    }


def test_unknown_git_resolution_keeps_the_revision_as_given() -> None:
    resolved = ResolvedGit.unknown("https://git.example/app", "main")
    assert resolved.to_api().to_json() == {
        "git": {"url": "https://git.example/app", "revision": "main", "type": "Unknown"}
    }
    assert not resolved.type.pollable


def test_resolved_blob_and_registry_status_forms() -> None:
    assert ResolvedBlob("https://b.example/a.zip").to_api().to_json() == {"blob": {"url": "https://b.example/a.zip"}}
    registry = ResolvedRegistry("r.example/app@sha256:" + "0" * 64, ("pull",), "src")
    assert registry.to_api().to_json() == {
        "registry": {
            "image": "r.example/app@sha256:" + "0" * 64,
            "subPath": "src",
            "imagePullSecrets": [{"name": "pull"}],
        }
    }


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"history_repositories": 0}, "GitResolverOptions.history_repositories must be at least 1, got 0"),
        ({"timeout": 0}, "GitResolverOptions.timeout must be > 0 seconds, got 0"),
        ({"timeout": -1.5}, "GitResolverOptions.timeout must be > 0 seconds, got -1.5"),
    ],
)
def test_bad_git_resolver_options_name_the_option(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        GitResolverOptions(**options)
