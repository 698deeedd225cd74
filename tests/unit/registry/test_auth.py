"""Challenge parsing, token responses and expiry, token reuse across scope sets, keychain lookup."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from kpack_core.registry import Credentials, StaticKeychain, parse_reference
from kpack_core.registry.auth import (
    DEFAULT_TOKEN_LIFETIME,
    Authenticator,
    Challenge,
    Token,
    parse_challenges,
    parse_token_response,
    pick_challenge,
    pull_scope,
    push_scope,
)


def test_bearer_challenge_with_commas_inside_quotes() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push",error="insufficient_scope"'
    )
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.scopes == ("repository:team/app:pull,push",)
    assert challenge.params["error"] == "insufficient_scope"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
        ("Basic", [("basic", {})]),
        ('BEARER Realm="r" , Service=s', [("bearer", {"realm": "r", "service": "s"})]),
        (
            'Negotiate, Basic realm="x", Bearer realm="y",service="z"',
            [("negotiate", {}), ("basic", {"realm": "x"}), ("bearer", {"realm": "y", "service": "z"})],
        ),
        (r'Bearer realm="a \"quoted\" realm",scope="a b"', [("bearer", {"realm": 'a "quoted" realm', "scope": "a b"})]),
        ("", []),
    ],
)
def test_parse_challenges(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert [(c.scheme, dict(c.params)) for c in parse_challenges(header)] == expected


def test_pick_challenge_takes_the_first_basic_or_bearer() -> None:
    picked = pick_challenge('Negotiate, Bearer realm="y", Basic realm="x"')
    assert picked is not None
    assert picked.scheme == "bearer"
    assert pick_challenge("Negotiate") is None
    assert Challenge("bearer", {"scope": "a b"}).scopes == ("a", "b")


def test_scopes() -> None:
    assert pull_scope("library/busybox") == "repository:library/busybox:pull"
    assert push_scope("team/app") == "repository:team/app:push,pull"


def test_token_response_prefers_access_token_and_honours_expiry() -> None:
    token = parse_token_response(orjson.dumps({"token": "t", "access_token": "a", "expires_in": 300}), 1000.0)
    assert token.value == "a"
    assert 1000 + 290 <= token.expires_at < 1300
    assert token.valid(1200.0)
    assert not token.valid(1300.0)
    default = parse_token_response(orjson.dumps({"token": "t"}), 0.0)
    assert (default.value, 0 < default.expires_at <= DEFAULT_TOKEN_LIFETIME) == ("t", True)


def test_token_issued_long_ago_is_already_old() -> None:
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 250))
    token = parse_token_response(orjson.dumps({"token": "t", "expires_in": 300, "issued_at": issued}), 0.0)
    assert token.expires_at < 60
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1000))
    assert parse_token_response(orjson.dumps({"token": "t", "issued_at": stale}), 5.0).expires_at == 5.0


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"token": ""}', b'{"token": 5}'])
def test_unusable_token_responses(body: bytes) -> None:
    with pytest.raises(ValueError, match="token"):
        parse_token_response(body, 0.0)


async def test_basic_and_registry_token_need_no_exchange() -> None:
    ref = "r/x"
    basic = Authenticator(Challenge("basic", {"realm": "x"}), Credentials("u", "p"))
    assert await basic.header(None, False, [], ref) == "Basic dTpw"  # type: ignore[arg-type]
    anonymous = Authenticator(Challenge("basic", {"realm": "x"}), Credentials())
    assert await anonymous.header(None, False, [], ref) is None  # type: ignore[arg-type]
    direct = Authenticator(Challenge("bearer", {"realm": "x"}), Credentials(registry_token="rt"))
    assert await direct.header(None, False, ["s"], ref) == "Bearer rt"  # type: ignore[arg-type]
    assert await Authenticator(None, Credentials("u", "p")).header(None, False, [], ref) is None  # type: ignore[arg-type]


def test_update_forgets_tokens_of_another_realm() -> None:
    authenticator = Authenticator(Challenge("bearer", {"realm": "a"}), Credentials())
    authenticator._tokens[frozenset({"s"})] = parse_token_response(b'{"token": "t"}', 0.0)
    authenticator.update(Challenge("bearer", {"realm": "a", "scope": "s2"}))
    assert authenticator._tokens
    authenticator.update(Challenge("bearer", {"realm": "b"}))
    assert not authenticator._tokens


async def test_static_keychain_matches_hosts_and_hub_aliases() -> None:
    user = Credentials("u", "p")
    hub = Credentials("hub", "p")
    keychain = StaticKeychain({"127.0.0.1:5000": user, "https://index.docker.io/v1/": hub})
    assert await keychain.resolve(parse_reference("127.0.0.1:5000/app")) == user
    assert await keychain.resolve(parse_reference("busybox")) == hub
    assert (await keychain.resolve(parse_reference("gcr.io/app"))).anonymous
    assert "p" not in repr(user)


class CountingAuthenticator(Authenticator):
    """Hands out `token-<n>` for the n-th fetch, valid until `expires_at`, and records each fetch's scopes."""

    def __init__(self) -> None:
        super().__init__(Challenge("bearer", {"realm": "https://auth.example/token"}), Credentials("u", "p"))
        self.now = 0.0
        self.clock = lambda: self.now
        self.fetched: list[list[str]] = []
        self.lifetime = 100.0

    async def _fetch(self, session: Any, ssl_context: Any, challenge: Any, scopes: list[str], reference: str) -> Token:
        self.fetched.append(scopes)
        return Token(f"token-{len(self.fetched)}", self.now + self.lifetime)


async def test_a_token_asked_for_more_scopes_serves_requests_needing_fewer() -> None:
    authenticator = CountingAuthenticator()
    push_all = [push_scope("team/app"), pull_scope("stacks/build"), pull_scope("buildpacks/go")]
    assert await authenticator.header(None, False, push_all, "r") == "Bearer token-1"  # type: ignore[arg-type]

    for needed in (
        [push_scope("team/app")],
        [pull_scope("team/app")],
        [push_scope("team/app"), pull_scope("buildpacks/go")],
    ):
        assert await authenticator.header(None, False, needed, "r") == "Bearer token-1"  # type: ignore[arg-type]
    assert len(authenticator.fetched) == 1

    # Not covered: a push to a repository the token was only asked to read, and an unrelated repository.
    assert await authenticator.header(None, False, [push_scope("stacks/build")], "r") == "Bearer token-2"  # type: ignore[arg-type]
    assert await authenticator.header(None, False, [pull_scope("other")], "r") == "Bearer token-3"  # type: ignore[arg-type]


async def test_a_refresh_fetches_exactly_the_scopes_needed_and_expired_tokens_are_dropped() -> None:
    authenticator = CountingAuthenticator()
    await authenticator.header(None, False, [push_scope("a"), pull_scope("b")], "r")  # type: ignore[arg-type]
    header = await authenticator.header(None, False, [pull_scope("b")], "r", refresh=True)  # type: ignore[arg-type]
    assert header == "Bearer token-2"
    assert authenticator.fetched[-1] == [pull_scope("b")]

    authenticator.now = 1000.0  # both expired
    await authenticator.header(None, False, [pull_scope("c")], "r")  # type: ignore[arg-type]
    assert list(authenticator._tokens) == [frozenset({pull_scope("c")})]
    assert set(authenticator._locks) <= {frozenset({pull_scope("c")})}
