"""The two registry matchers of formats.md §2.8, by table: kpack's exact keys and the Kubernetes keyring's globs."""

from __future__ import annotations

import pytest
import structlog

from kpack_core.keychains import DockerCredentials, Keyring, kpack_key_matches
from kpack_core.keychains.matching import (
    _glob,
    is_default_registry_match,
    keyring_urls_match,
    normalise_keyring_key,
)
from kpack_core.registry import parse_reference
from kpack_core.registry.auth import ANONYMOUS, Credentials

# --- kpack's exact matcher -------------------------------------------------------------------------------------

KPACK_CASES = [
    # (config key, registry host as ggcr's RegistryStr() gives it, matches)
    ("gcr.io", "gcr.io", True),
    ("https://gcr.io", "gcr.io", True),
    ("http://gcr.io", "gcr.io", True),
    ("https://gcr.io/v1/", "gcr.io", True),
    ("http://gcr.io/v1/", "gcr.io", True),
    ("https://gcr.io/v2/", "gcr.io", True),
    ("http://gcr.io/v2/", "gcr.io", True),
    ("https://gcr.io/v2", "gcr.io", False),  # exact strings: no trailing slash, no match
    ("https://gcr.io/", "gcr.io", False),
    ("gcr.io/project", "gcr.io", False),  # no path prefixes in kpack's rule
    ("GCR.io", "gcr.io", False),  # nor case folding
    ("eu.gcr.io", "gcr.io", False),
    ("*.gcr.io", "eu.gcr.io", False),  # nor globs
    ("localhost:5000", "localhost:5000", True),
    ("https://localhost:5000/v2/", "localhost:5000", True),
    ("localhost", "localhost:5000", False),
    ("https://index.docker.io/v1/", "index.docker.io", True),  # Docker Hub has one spelling
    ("index.docker.io", "index.docker.io", False),
    ("docker.io", "index.docker.io", False),
    ("https://index.docker.io", "index.docker.io", False),
    ("https://index.docker.io/v2/", "index.docker.io", False),
]


@pytest.mark.parametrize(("key", "registry", "expected"), KPACK_CASES)
def test_kpack_exact_matcher(key: str, registry: str, expected: bool) -> None:
    assert kpack_key_matches(key, registry) is expected


async def test_kpack_credentials_resolve_by_registry_host_first_claimed_key_first() -> None:
    credentials = DockerCredentials(
        [
            ("https://gcr.io", Credentials("first")),
            ("gcr.io", Credentials("second")),
            ("https://index.docker.io/v1/", Credentials("hub")),
        ]
    )
    assert await credentials.resolve(parse_reference("gcr.io/proj/app")) == Credentials("first")
    assert await credentials.resolve(parse_reference("ubuntu")) == Credentials("hub")
    assert await credentials.resolve(parse_reference("docker.io/team/app:v1")) == Credentials("hub")
    assert await credentials.resolve(parse_reference("quay.io/team/app")) is ANONYMOUS


# --- the Kubernetes keyring ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "normalised"),
    [
        ("gcr.io", "gcr.io"),
        ("https://gcr.io", "gcr.io"),
        ("http://gcr.io/", "gcr.io"),
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("https://quay.io/v2/", "quay.io"),
        ("quay.io/v2/team", "quay.io/team"),
        ("https://quay.io/v1/team/app", "quay.io/team/app"),
        ("quay.io/team", "quay.io/team"),
        ("quay.io/v3/team", "quay.io/v3/team"),  # only v1 and v2 are version prefixes
        ("https://user@gcr.io", "gcr.io"),
        ("localhost:5000", "localhost:5000"),
        ("*.gcr.io", "*.gcr.io"),
    ],
)
def test_keyring_key_normalisation(key: str, normalised: str) -> None:
    assert normalise_keyring_key(key) == normalised


@pytest.mark.parametrize(
    ("glob", "name", "expected"),
    [
        ("*", "anything-at-all", True),
        ("*", "", True),
        ("a*c", "abbbc", True),
        ("a*c", "ab/c", False),  # * never crosses the separator
        ("?", "x", True),
        ("?", "", False),
        ("[^a-f]", "g", True),
        ("[^a-f]", "c", False),
        ("[^z-a]", "q", True),  # a negated empty class matches any one character
        ("[\\]]x", "]x", True),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("[a-]", "a", False),  # malformed: never matches
        ("[]", "]", False),
        ("x\\", "x", False),
    ],
)
def test_go_glob_semantics(glob: str, name: str, expected: bool) -> None:
    expression = _glob(glob)
    assert (expression is not None and expression.fullmatch(name) is not None) is expected


@pytest.mark.parametrize("key", ["host:notaport", "https://[::1", "host:5000x", "bad host.io", "a^b.io", "a%41.io"])
def test_keyring_key_that_is_no_url_is_refused(key: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - urllib's own message
        normalise_keyring_key(key)
    with structlog.testing.capture_logs() as logs:
        assert Keyring([{key: Credentials("x")}]).keys == []  # dropped, as the kubelet does, not fatal
    assert [entry["event"] for entry in logs] == ["docker config key is not a URL; ignored"]


def test_dropped_key_is_logged_without_its_user_info() -> None:
    with structlog.testing.capture_logs() as logs:
        Keyring([{"https://alice:s3cret@host:port/": Credentials("x")}])
    assert logs[0]["key"] == "https://***@host:port/"


KEYRING_CASES = [
    # (normalised key, image, matches)
    ("gcr.io", "gcr.io/proj/app", True),
    ("gcr.io", "eu.gcr.io/proj/app", False),
    ("*.gcr.io", "eu.gcr.io/proj/app", True),
    ("*.gcr.io", "gcr.io/proj/app", False),  # a glob label stands for exactly one label
    ("*.gcr.io", "a.b.gcr.io/app", False),
    ("eu.*.io", "eu.gcr.io/app", True),
    ("g[a-h]r.io", "gcr.io/app", True),
    ("g[a-b]r.io", "gcr.io/app", False),
    ("g[abc]r.io", "gcr.io/app", True),
    ("g[z-a]r.io", "gcr.io/app", False),  # an empty range matches nothing
    ("g[]r.io", "gcr.io/app", False),  # a malformed glob matches nothing
    ("g[c", "gc/app", False),
    ("[a-h]cr.io", "gcr.io/app", False),  # Go's url.Parse reads a leading [ as an IPv6 address: no URL
    ("g[^a-f]r.io", "gcr.io/app", False),  # ^ may not appear in a host: no URL, so no negated classes
    ("g?r.io", "gcr.io/app", False),  # ? starts the query: the key's host is just "g"
    ("GCR.io", "gcr.io/app", False),  # globs are case-sensitive
    ("gcr.io/proj", "gcr.io/proj/app", True),
    ("gcr.io/proj", "gcr.io/project/app", True),  # a string prefix, not a path-segment prefix
    ("gcr.io/proj/app", "gcr.io/proj", False),
    ("gcr.io/other", "gcr.io/proj/app", False),
    ("localhost:5000", "localhost:5000/app", True),
    ("localhost:5000", "localhost:5001/app", False),
    ("localhost", "localhost:5000/app", False),  # both ports must be equal, none counts as empty
    ("localhost:5000", "localhost/app", False),
    ("*:5000", "localhost:5000/app", True),
    ("[::1]:5000", "[::1]:5000/app", True),
    ("index.docker.io", "index.docker.io/library/ubuntu", True),
]


@pytest.mark.parametrize(("key", "image", "expected"), KEYRING_CASES)
def test_keyring_urls_match(key: str, image: str, expected: bool) -> None:
    assert keyring_urls_match(key, image) is expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ubuntu", True),
        ("library/ubuntu", True),
        ("team/app", True),
        ("docker.io/team/app", True),
        ("index.docker.io/team/app", True),
        ("gcr.io/proj/app", False),
        ("localhost:5000/app", False),
        ("localhost/app", True),  # no dot and no colon: a Hub account, for the keyring
        ("/app", False),
    ],
)
def test_default_registry_match(image: str, expected: bool) -> None:
    assert is_default_registry_match(image) is expected


def test_keyring_tries_keys_reverse_sorted_and_returns_every_match() -> None:
    keyring = Keyring(
        [
            {"quay.io": Credentials("host"), "https://quay.io/v2/team": Credentials("team")},
            {"quay.io": Credentials("second-secret"), "*.io": Credentials("glob")},
        ]
    )
    assert keyring.keys == ["quay.io/team", "quay.io", "*.io"]
    assert keyring.lookup("quay.io/team/app") == [
        Credentials("team"),
        Credentials("host"),
        Credentials("second-secret"),  # same key from a later secret: after the earlier one
        Credentials("glob"),
    ]
    assert keyring.lookup("quay.io/other/app") == [
        Credentials("host"),
        Credentials("second-secret"),
        Credentials("glob"),
    ]
    assert keyring.lookup("gcr.io/app") == [Credentials("glob")]
    assert keyring.lookup("ghcr.com/app") == []


def test_keyring_docker_hub_fallback_uses_the_index_docker_io_entry() -> None:
    keyring = Keyring([{"https://index.docker.io/v1/": Credentials("hub"), "docker.io": Credentials("short")}])
    assert keyring.keys == ["index.docker.io", "docker.io"]
    assert keyring.lookup("ubuntu") == [Credentials("hub")]  # nothing matches "ubuntu" itself: the fallback
    assert keyring.lookup("team/app") == [Credentials("hub")]
    assert keyring.lookup("docker.io/team/app") == [Credentials("short")]  # a match: no fallback
    assert keyring.lookup("index.docker.io/team/app") == [Credentials("hub")]
    assert keyring.lookup("gcr.io/team/app") == []
    assert Keyring([{"docker.io": Credentials("short")}]).lookup("ubuntu") == []  # only index.docker.io is used
