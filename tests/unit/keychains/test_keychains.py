"""Keychain composition over an in-memory reader: the order of spec §0.6, missing objects, malformed secrets,
snapshots, the volume keychain and the merged docker config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpack_core.keychains import (
    CREDENTIAL_PROVIDER_SECRET_PATH,
    MultiKeychain,
    PullSecretsKeychain,
    SecretFormatError,
    ServiceAccountKeychain,
    VolumeKeychain,
    read_docker_config_dir,
    service_account_docker_config,
)
from kpack_core.registry import Reference, StaticKeychain, parse_reference
from kpack_core.registry.auth import ANONYMOUS, Credentials

from .helpers import MemoryReader, b64, basic_auth, dockercfg, dockerconfigjson, secret, service_account

HUB = "https://index.docker.io/v1/"


def write_volume(
    directory: Path, dockerconfigjson: dict[str, object] | None, dockercfg: dict[str, object] | None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if dockerconfigjson is not None:
        (directory / ".dockerconfigjson").write_text(json.dumps({"auths": dockerconfigjson}))
    if dockercfg is not None:
        (directory / ".dockercfg").write_text(json.dumps(dockercfg))
    return directory


async def resolve(keychain: ServiceAccountKeychain | PullSecretsKeychain | VolumeKeychain, image: str) -> Credentials:
    return await keychain.resolve(parse_reference(image))


# --- the order: service account secrets, volume, pull secrets ---------------------------------------------------


async def test_service_account_secrets_then_volume_then_pull_secrets(tmp_path: Path) -> None:
    reader = MemoryReader(
        service_account("builder", secrets=["sa-docker"], pull_secrets=["pull"]),
        dockerconfigjson("sa-docker", {"gcr.io": {"username": "from-sa"}}),
        dockerconfigjson(
            "pull",
            {
                "gcr.io": {"username": "from-pull"},
                "quay.io": {"username": "from-pull"},
                "ghcr.io": {"username": "from-pull"},
            },
        ),
    )
    volume = write_volume(tmp_path / "volume", {"quay.io": {"username": "from-volume"}}, None)
    keychain = ServiceAccountKeychain(reader, "team", "builder", volume_directory=volume)
    assert await resolve(keychain, "gcr.io/proj/app") == Credentials("from-sa")
    assert await resolve(keychain, "quay.io/proj/app") == Credentials("from-volume")
    assert await resolve(keychain, "ghcr.io/proj/app") == Credentials("from-pull")
    assert await resolve(keychain, "registry.example.com/app") is ANONYMOUS


async def test_service_account_secrets_match_exactly_but_pull_secrets_by_keyring() -> None:
    # "docker.io" never names Docker Hub to kpack's own matcher; in a pull secret the keyring would not match it
    # either, but "index.docker.io" (no scheme) does match there, through the keyring's glob rule.
    reader = MemoryReader(
        service_account(secrets=["sa"], pull_secrets=["pull"]),
        dockerconfigjson("sa", {"index.docker.io": {"username": "sa-hub"}, "gcr.io/proj": {"username": "sa-path"}}),
        dockerconfigjson("pull", {"index.docker.io": {"username": "pull-hub"}, "gcr.io/proj": {"username": "p"}}),
    )
    keychain = ServiceAccountKeychain(reader, "team", volume_directory="")
    assert await resolve(keychain, "ubuntu") == Credentials("pull-hub")
    assert await resolve(keychain, "gcr.io/proj/app") == Credentials("p")
    assert await resolve(keychain, "gcr.io/other/app") is ANONYMOUS


async def test_annotated_basic_auth_for_docker_hub() -> None:
    reader = MemoryReader(
        service_account(secrets=["hub"]),
        basic_auth("hub", "alice", "s3cret", {"kpack.io/docker": HUB}),
    )
    keychain = ServiceAccountKeychain(reader, "team", environ={})
    assert await resolve(keychain, "team/app") == Credentials("alice", "s3cret")
    assert await resolve(keychain, "docker.io/library/ubuntu:22.04") == Credentials("alice", "s3cret")
    assert await resolve(keychain, "gcr.io/team/app") is ANONYMOUS


async def test_explicit_pull_secrets_come_before_the_service_accounts() -> None:
    reader = MemoryReader(
        service_account(pull_secrets=["sa-pull"]),
        dockerconfigjson("sa-pull", {"gcr.io": {"username": "sa"}}),
        dockercfg("explicit", {"gcr.io": {"username": "explicit"}}),
    )
    keychain = PullSecretsKeychain(reader, "team", "", ["explicit"])
    assert await resolve(keychain, "gcr.io/a") == Credentials("explicit")
    assert (await keychain.keyring()).lookup("gcr.io/a") == [Credentials("explicit"), Credentials("sa")]
    assert await resolve(PullSecretsKeychain(reader, "team"), "gcr.io/a") == Credentials("sa")


async def test_pull_secrets_of_other_types_are_ignored() -> None:
    reader = MemoryReader(
        service_account(pull_secrets=["basic", "opaque"]),
        basic_auth("basic", "u", "p", {"kpack.io/docker": "gcr.io"}),
        secret("opaque", "Opaque", {".dockerconfigjson": json.dumps({"auths": {"gcr.io": {"username": "x"}}})}),
    )
    assert await resolve(PullSecretsKeychain(reader, "team"), "gcr.io/a") is ANONYMOUS


# --- missing and malformed --------------------------------------------------------------------------------------


async def test_missing_service_account_is_no_credentials_not_an_error(tmp_path: Path) -> None:
    reader = MemoryReader(dockerconfigjson("orphan", {"gcr.io": {"username": "x"}}))
    keychain = ServiceAccountKeychain(reader, "team", "nobody", ["missing", "orphan"], volume_directory=tmp_path)
    assert await resolve(keychain, "gcr.io/a") == Credentials("x")  # the explicit pull secret still counts
    assert await resolve(ServiceAccountKeychain(reader, "team", "nobody", environ={}), "gcr.io/a") is ANONYMOUS


async def test_missing_secrets_are_skipped() -> None:
    reader = MemoryReader(
        service_account(secrets=["gone", "present"], pull_secrets=["gone-too"]),
        dockerconfigjson("present", {"gcr.io": {"username": "present"}}),
    )
    assert await resolve(ServiceAccountKeychain(reader, "team", environ={}), "gcr.io/a") == Credentials("present")


async def test_a_malformed_service_account_secret_fails_the_keychain() -> None:
    reader = MemoryReader(
        service_account(secrets=["good", "broken"]),
        dockerconfigjson("good", {"gcr.io": {"username": "good"}}),
        dockerconfigjson("broken", {"quay.io": {"auth": b64("s3cret")}}),
    )
    keychain = ServiceAccountKeychain(reader, "team", environ={})
    # Fatal even for a registry the broken secret is not about, as in kpack.
    with pytest.raises(SecretFormatError, match=r"^secret team/broken: key '.dockerconfigjson': entry 'quay.io'"):
        await resolve(keychain, "gcr.io/a")


async def test_a_malformed_pull_secret_fails_the_keychain() -> None:
    reader = MemoryReader(
        service_account(pull_secrets=["broken"]),
        secret("broken", "kubernetes.io/dockercfg", {".dockercfg": "[1, 2]"}),
    )
    with pytest.raises(SecretFormatError, match=r"secret team/broken: key '.dockercfg': is not a JSON object"):
        await resolve(ServiceAccountKeychain(reader, "team", environ={}), "gcr.io/a")


async def test_empty_namespace_reads_only_the_volume(tmp_path: Path) -> None:
    reader = MemoryReader(service_account(secrets=["sa"]), dockerconfigjson("sa", {"gcr.io": {"username": "sa"}}))
    volume = write_volume(tmp_path, {"gcr.io": {"username": "volume"}}, None)
    keychain = ServiceAccountKeychain(reader, "", environ={CREDENTIAL_PROVIDER_SECRET_PATH: str(volume)})
    assert await resolve(keychain, "gcr.io/a") == Credentials("volume")
    assert await resolve(keychain, "quay.io/a") is ANONYMOUS
    assert reader.reads == 0


# --- snapshots --------------------------------------------------------------------------------------------------


async def test_secrets_are_read_once_until_reset() -> None:
    reader = MemoryReader(
        service_account(secrets=["sa"], pull_secrets=["pull"]),
        dockerconfigjson("sa", {"gcr.io": {"username": "old"}}),
        dockerconfigjson("pull", {"quay.io": {"username": "pull"}}),
    )
    keychain = ServiceAccountKeychain(reader, "team", environ={})
    for _ in range(3):
        assert await resolve(keychain, "gcr.io/a") == Credentials("old")
        assert await resolve(keychain, "quay.io/a") == Credentials("pull")
    reads = reader.reads
    assert reads == 4  # each part: the service account and its one secret
    reader.objects["Secret", "team", "sa"] = dockerconfigjson("sa", {"gcr.io": {"username": "new"}})
    assert await resolve(keychain, "gcr.io/a") == Credentials("old")
    keychain.reset()
    assert await resolve(keychain, "gcr.io/a") == Credentials("new")
    assert reader.reads > reads


# --- the volume keychain ----------------------------------------------------------------------------------------


def test_volume_directory_reads_both_files_dockerconfigjson_first(tmp_path: Path) -> None:
    write_volume(
        tmp_path,
        {"gcr.io": {"username": "json"}},
        {"gcr.io": {"username": "cfg"}, HUB: {"auth": b64("hub:pw")}},
    )
    assert read_docker_config_dir(tmp_path) == {"gcr.io": Credentials("json"), HUB: Credentials("hub", "pw")}
    assert read_docker_config_dir(tmp_path / "absent") == {}


async def test_volume_keychain_from_the_environment(tmp_path: Path) -> None:
    write_volume(tmp_path, None, {HUB: {"auth": b64("hub:pw")}})
    keychain = VolumeKeychain(environ={CREDENTIAL_PROVIDER_SECRET_PATH: str(tmp_path)})
    assert await resolve(keychain, "ubuntu") == Credentials("hub", "pw")
    assert await resolve(VolumeKeychain(environ={}), "ubuntu") is ANONYMOUS
    assert await resolve(VolumeKeychain(environ={CREDENTIAL_PROVIDER_SECRET_PATH: ""}), "ubuntu") is ANONYMOUS


async def test_malformed_volume_file_names_the_directory_and_file(tmp_path: Path) -> None:
    tmp_path.joinpath(".dockerconfigjson").write_text('{"auths": {"gcr.io": {"auth": "s3cret"}}}')
    with pytest.raises(
        SecretFormatError, match=rf"^directory {tmp_path}: key '.dockerconfigjson': entry 'gcr.io'"
    ) as e:
        await resolve(VolumeKeychain(tmp_path), "gcr.io/a")
    assert "s3cret" not in str(e.value)


# --- composition and the docker config ---------------------------------------------------------------------------


async def test_multi_keychain_first_non_anonymous_wins_and_errors_stop_it() -> None:
    class Broken:
        async def resolve(self, reference: Reference) -> Credentials:
            raise SecretFormatError("secret team/broken", "username", "value is not UTF-8 text")

    empty = StaticKeychain()
    first = StaticKeychain({"gcr.io": Credentials("first")})
    second = StaticKeychain({"gcr.io": Credentials("second"), "quay.io": Credentials("second")})
    chain = MultiKeychain(empty, first, second)
    assert await chain.resolve(parse_reference("gcr.io/a")) == Credentials("first")
    assert await chain.resolve(parse_reference("quay.io/a")) == Credentials("second")
    assert await chain.resolve(parse_reference("ghcr.io/a")) is ANONYMOUS
    assert await MultiKeychain().resolve(parse_reference("ghcr.io/a")) is ANONYMOUS
    assert await MultiKeychain(first, Broken()).resolve(parse_reference("gcr.io/a")) == Credentials("first")
    with pytest.raises(SecretFormatError, match="team/broken"):
        await MultiKeychain(empty, Broken(), first).resolve(parse_reference("gcr.io/a"))


async def test_service_account_docker_config_merges_like_build_init() -> None:
    reader = MemoryReader(
        service_account("builder", secrets=["json", "basic", "git"]),
        dockerconfigjson("json", {"gcr.io": {"username": "json", "password": "1"}}),
        basic_auth("basic", "basic", "2", {"kpack.io/docker": "gcr.io"}),
        basic_auth("git", "git", "3", {"kpack.io/git": "github.com"}),
        dockerconfigjson("builder-pull", {"gcr.io": {"username": "b"}, "quay.io": {"username": "b", "password": "4"}}),
    )
    config = await service_account_docker_config(reader, "team", "builder", ["builder-pull", "missing"])
    assert config == {
        "auths": {
            "gcr.io": {"username": "basic", "password": "2", "auth": b64("basic:2")},
            "quay.io": {"username": "b", "password": "4", "auth": b64("b:4")},
        }
    }
    assert await service_account_docker_config(reader, "team", "nobody") == {"auths": {}}


def test_reprs_name_objects_never_values(tmp_path: Path) -> None:
    keychain = ServiceAccountKeychain(MemoryReader(), "team", "builder", ["pull"], volume_directory=tmp_path)
    text = repr(keychain)
    assert "team/builder" in text
    assert "VolumeKeychain" in text
