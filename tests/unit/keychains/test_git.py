"""The git keychain of spec §0.7: transports, domains, name order, kinds per transport, the SSH user."""

from __future__ import annotations

import pytest

from kpack_core.keychains import SecretFormatError, ServiceAccountGitKeychain, git_domain_matches, git_transport
from kpack_core.keychains.git import GitTransport
from kpack_core.source.credentials import GitCredential, GitCredentialKind

from .helpers import MemoryReader, basic_auth, secret, service_account

BASIC, SSH = GitCredentialKind.BASIC, GitCredentialKind.SSH
KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/org/repo.git", GitTransport(BASIC)),
        ("http://127.0.0.1:8080/repo", GitTransport(BASIC)),
        ("HTTPS://github.com/org/repo", GitTransport(BASIC)),
        ("ssh://github.com/org/repo.git", GitTransport(SSH, "git")),
        ("ssh://deploy@github.com:2222/org/repo.git", GitTransport(SSH, "deploy")),
        ("git+ssh://me@host/repo", GitTransport(SSH, "me")),
        ("git@github.com:org/repo.git", GitTransport(SSH, "git")),
        ("alice@gitlab.com:group/repo", GitTransport(SSH, "alice")),
        ("github.com:org/repo", GitTransport(SSH, "git")),
        ("git://github.com/org/repo", None),
        ("file:///srv/repo", None),
        ("/srv/repo", None),
        ("./repo", None),
    ],
)
def test_git_transport(url: str, expected: GitTransport | None) -> None:
    assert git_transport(url) == expected


@pytest.mark.parametrize(
    ("domain", "host", "expected"),
    [
        ("github.com", "github.com", True),
        ("https://github.com", "github.com", True),
        ("http://github.com", "github.com", True),
        ("git@github.com", "github.com", True),
        ("https://github.com/", "github.com", False),
        ("https://github.com/org", "github.com", False),
        ("ssh://github.com", "github.com", False),
        ("github.com", "gitlab.com", False),
        ("127.0.0.1:8080", "127.0.0.1:8080", True),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("127.0.0.1", "127.0.0.1:8080", False),
        ("", "", False),
    ],
)
def test_git_domain_matches(domain: str, host: str, expected: bool) -> None:
    assert git_domain_matches(domain, host) is expected


def ssh_auth(name: str, domain: str, key: bytes = KEY) -> dict[str, object]:
    return secret(name, "kubernetes.io/ssh-auth", {"ssh-privatekey": key}, annotations={"kpack.io/git": domain})


def keychain(*secrets: dict[str, object], account: str = "default") -> ServiceAccountGitKeychain:
    names = [s["metadata"]["name"] for s in secrets]  # type: ignore[index]
    return ServiceAccountGitKeychain(MemoryReader(service_account(account, secrets=names), *secrets), "team", account)


async def test_basic_auth_for_http_remotes_only() -> None:
    chain = keychain(basic_auth("github", "alice", "s3cret", {"kpack.io/git": "https://github.com"}))
    expected = GitCredential(BASIC, "alice", "s3cret", source="secret team/github")
    assert await chain.resolve("https://github.com/org/repo.git") == expected
    assert await chain.resolve("http://github.com/org/repo.git") == expected
    assert await chain.resolve("git@github.com:org/repo.git") is None
    assert await chain.resolve("ssh://github.com/org/repo.git") is None
    assert await chain.resolve("https://gitlab.com/org/repo.git") is None


async def test_ssh_key_for_ssh_remotes_only_with_the_user_from_the_url() -> None:
    chain = keychain(ssh_auth("deploy-key", "git@github.com"))
    assert await chain.resolve("git@github.com:org/repo.git") == GitCredential(
        SSH, "git", private_key=KEY, source="secret team/deploy-key"
    )
    credential = await chain.resolve("ssh://deployer@github.com/org/repo.git")
    assert credential is not None
    assert (credential.username, credential.private_key) == ("deployer", KEY)
    assert await chain.resolve("https://github.com/org/repo.git") is None


async def test_candidates_are_tried_sorted_by_secret_name() -> None:
    chain = keychain(
        basic_auth("zeta", "z", "z", {"kpack.io/git": "github.com"}),
        basic_auth("alpha", "a", "a", {"kpack.io/git": "http://github.com"}),
        ssh_auth("beta", "github.com"),
        basic_auth("gitlab", "g", "g", {"kpack.io/git": "gitlab.com"}),
    )
    https = await chain.resolve("https://github.com/org/repo")
    assert https is not None
    assert (https.username, https.source) == ("a", "secret team/alpha")
    ssh = await chain.resolve("git@github.com:org/repo")
    assert ssh is not None
    assert ssh.source == "secret team/beta"  # alpha is first by name but is no SSH credential
    gitlab = await chain.resolve("https://gitlab.com/org/repo")
    assert gitlab is not None
    assert gitlab.source == "secret team/gitlab"


async def test_unannotated_and_docker_secrets_are_not_git_credentials() -> None:
    chain = keychain(
        secret("plain", "kubernetes.io/basic-auth", {"username": "u", "password": "p"}),
        basic_auth("docker", "u", "p", {"kpack.io/docker": "github.com"}),
        secret("opaque", "Opaque", {"username": "u"}, annotations={"kpack.io/git": "github.com"}),
    )
    assert await chain.resolve("https://github.com/org/repo") is None


async def test_git_protocol_and_local_paths_get_no_credentials() -> None:
    chain = keychain(basic_auth("any", "u", "p", {"kpack.io/git": "github.com"}), ssh_auth("key", "github.com"))
    assert await chain.resolve("git://github.com/org/repo") is None
    assert await chain.resolve("/srv/git/repo") is None


async def test_missing_service_account_or_namespace_means_no_credentials() -> None:
    reader = MemoryReader(basic_auth("github", "u", "p", {"kpack.io/git": "github.com"}))
    assert await ServiceAccountGitKeychain(reader, "team", "nobody").resolve("https://github.com/o/r") is None
    assert await ServiceAccountGitKeychain(reader, "").resolve("https://github.com/o/r") is None
    assert reader.reads == 1  # only the service account was looked for


async def test_missing_secret_is_skipped() -> None:
    present = basic_auth("present", "u", "p", {"kpack.io/git": "github.com"})
    reader = MemoryReader(service_account(secrets=["absent", "present"]), present)
    credential = await ServiceAccountGitKeychain(reader, "team").resolve("https://github.com/o/r")
    assert credential is not None
    assert credential.source == "secret team/present"


async def test_ssh_secret_without_a_key_is_an_error_naming_it() -> None:
    broken = secret("broken-key", "kubernetes.io/ssh-auth", {}, annotations={"kpack.io/git": "github.com"})
    with pytest.raises(SecretFormatError, match=r"^secret team/broken-key: key 'ssh-privatekey': missing"):
        await keychain(broken).resolve("git@github.com:o/r")


async def test_reprs_hide_secret_values() -> None:
    chain = keychain(
        basic_auth("github", "alice", "s3cret", {"kpack.io/git": "github.com"}), ssh_auth("key", "gitlab.com")
    )
    for url in ("https://github.com/o/r", "git@gitlab.com:o/r"):
        credential = await chain.resolve(url)
        assert credential is not None
        assert "s3cret" not in repr(credential)
        assert "PRIVATE KEY" not in repr(credential)
    assert repr(chain) == "ServiceAccountGitKeychain(team/default)"
