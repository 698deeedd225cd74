"""Which docker config key names which registry: kpack's exact rule and the Kubernetes keyring's glob rule.

formats.md §2.8. kpack's own keychain (`pkg/dockercreds`) compares strings: a key names registry host H when it is
exactly H, `http(s)://H`, `http(s)://H/v1/` or `http(s)://H/v2/`, with Docker Hub's host replaced by
`https://index.docker.io/v1/` first (so `docker.io` or `index.docker.io` never name Docker Hub there).

The Kubernetes keyring (`credentialprovider.BasicDockerKeyring`, used by ggcr's k8schain for image pull secrets)
normalises keys to host + path, tries them in reverse-sorted order, matches hosts label by label as shell globs with
equal ports, requires the key's path to be a string prefix of the image's path, and falls back to the
`index.docker.io` entry for images on the default registry.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from functools import lru_cache

import structlog

from kpack_core.keychains.errors import describe_key
from kpack_core.registry.auth import Credentials
from kpack_core.registry.reference import DOCKER_HUB

log = structlog.get_logger(__name__)

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
"""How kpack spells Docker Hub in a docker config (and what its docs tell users to annotate secrets with)."""

_KPACK_FORMATS = ("{}", "https://{}", "http://{}", "https://{}/v1/", "http://{}/v1/", "https://{}/v2/", "http://{}/v2/")


# --- kpack's exact matcher -------------------------------------------------------------------------------------


def kpack_key_matches(key: str, registry: str) -> bool:
    """Whether docker config key `key` names registry host `registry` by kpack's exact rule."""
    target = DOCKER_HUB_KEY if registry == DOCKER_HUB else registry
    return any(form.format(target) == key for form in _KPACK_FORMATS)


# --- the Kubernetes keyring ------------------------------------------------------------------------------------


# Go's url.Parse accepts these ASCII characters in a host (and any non-ASCII one); `?` and `#` end the authority.
_HOST_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:[]<>\"")


def _parse_url(url: str) -> tuple[str, str]:
    """`(host[:port], path)` of a URL with a scheme, the way Go's `url.Parse` splits and checks it; ValueError
    where Go refuses it (a port that is not digits, an unclosed bracket, a character no host may contain).

    Not urllib: it reads brackets as IPv6 only, while Go (and so the keyring) takes `g[a-c]r.io` as a host."""
    rest = url.split("#", 1)[0]
    _, _, rest = rest.partition("://")
    rest = rest.split("?", 1)[0]
    authority, slash, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        close = host.rfind("]")
        if close == -1:
            raise ValueError("missing ']' in host")
        port = host[close + 1 :]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon != -1 else ""
    if port and not (port[0] == ":" and port[1:].isascii() and (port[1:].isdigit() or not port[1:])):
        raise ValueError("invalid port after host")
    if any(char not in _HOST_CHARACTERS and char.isascii() for char in host):
        raise ValueError("invalid character in host name")
    return host, slash + path


def _parse_schemeless(text: str) -> tuple[str, str]:
    """`text` parsed as a URL after `https://` is put in front (how the keyring reads keys and images)."""
    return _parse_url("https://" + text)


def normalise_keyring_key(key: str) -> str:
    """The keyring's form of a docker config key: host, plus the path when it is more than `/` (a leading `/v1`
    or `/v2` dropped). ValueError when the key is no URL."""
    host, path = _parse_url(key if key.startswith(("https://", "http://")) else "https://" + key)
    if path.startswith(("/v1/", "/v2/")):
        path = path[3:]
    return host + path if path and path != "/" else host


def _split_host(host: str) -> tuple[list[str], str]:
    """Hostname labels and port, as Go's `net.SplitHostPort` + `strings.Split(host, ".")` (no port when the
    host does not split cleanly, e.g. a bare IPv6 address)."""
    if host.startswith("["):
        end = host.find("]")
        if end != -1 and host[end + 1 : end + 2] == ":" and ":" not in host[end + 2 :]:
            return host[1:end].split("."), host[end + 2 :]
        return host.split("."), ""
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name.split("."), port
    return host.split("."), ""


@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str] | None:
    """Go's `filepath.Match` pattern as a regular expression; None for a malformed pattern (never matches).

    `*` is any run of non-`/` characters, `?` one non-`/` character, `[...]` a class with `^` for negation and
    `a-z` ranges, `\\` escapes the next character.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            i += 1
            if i == len(pattern):
                return None
            out.append(re.escape(pattern[i]))
        elif char == "[":
            parsed = _glob_class(pattern, i + 1)
            if parsed is None:
                return None
            expression, i = parsed
            out.append(expression)
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, i: int) -> tuple[str, int] | None:
    """One (possibly escaped) character of a class and the index after it (Go's `getEsc`)."""
    if i >= len(pattern) or pattern[i] in "-]":
        return None
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            return None
    if i + 1 >= len(pattern):
        return None  # a class must be closed after this character
    return pattern[i], i + 1


def _glob_class(pattern: str, i: int) -> tuple[str, int] | None:
    """The class starting after `[` at `i`: its regular expression and the index after `]`; None when bad."""
    negate = i < len(pattern) and pattern[i] == "^"
    i += negate
    ranges: list[tuple[str, str]] = []
    while True:
        if i < len(pattern) and pattern[i] == "]" and ranges:
            i += 1
            break
        low = _class_char(pattern, i)
        if low is None:
            return None
        lo, i = low
        hi = lo
        if pattern[i] == "-":
            high = _class_char(pattern, i + 1)
            if high is None:
                return None
            hi, i = high
        ranges.append((lo, hi))
    body = "".join(f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in ranges if lo <= hi)
    if not body:  # only empty ranges: nothing is in the class
        return ("(?s:.)" if negate else "(?!)"), i
    return f"[{'^' if negate else ''}{body}]", i


def keyring_urls_match(key: str, image: str) -> bool:
    """Whether normalised keyring key `key` (host with globs, optional path) covers `image` (`host/path`, no
    scheme): equal ports, as many host labels, each matching as a glob, and the key's path a prefix of the
    image's."""
    try:
        (glob_host, glob_path), (target_host, target_path) = _parse_schemeless(key), _parse_schemeless(image)
    except ValueError:
        return False
    glob_labels, glob_port = _split_host(glob_host)
    target_labels, target_port = _split_host(target_host)
    if glob_port != target_port or len(glob_labels) != len(target_labels):
        return False
    if not target_path.startswith(glob_path):
        return False
    for glob_label, target_label in zip(glob_labels, target_labels, strict=True):
        expression = _glob(glob_label)
        if expression is None or expression.fullmatch(target_label) is None:
            return False
    return True


def is_default_registry_match(image: str) -> bool:
    """Whether `image` (as written, no scheme) is pulled from Docker Hub: no `/`, a first segment of `docker.io`
    or `index.docker.io`, or a first segment with neither `.` nor `:` (a Hub account)."""
    first, slash, _ = image.partition("/")
    if not first:
        return False
    if not slash or first in ("docker.io", "index.docker.io"):
        return True
    return "." not in first and ":" not in first


class Keyring:
    """The Kubernetes docker keyring: every credential added, by normalised key; `lookup` returns all that
    cover an image, most specific key first. Keys that are no URL are dropped with a warning, as Kubernetes does.
    """

    def __init__(self, configs: Iterable[Mapping[str, Credentials]] = ()) -> None:
        self._credentials: dict[str, list[Credentials]] = {}
        self._index: list[str] = []
        for config in configs:
            self.add(config)

    def __repr__(self) -> str:
        return f"Keyring(keys={self._index!r})"

    def add(self, config: Mapping[str, Credentials]) -> None:
        """Adds a docker config's entries; a key seen before keeps its earlier credentials first."""
        for key, credentials in config.items():
            try:
                normalised = normalise_keyring_key(key)
            except ValueError:
                log.warning("docker config key is not a URL; ignored", key=describe_key(key))
                continue
            self._credentials.setdefault(normalised, []).append(credentials)
        # Reverse-sorted so that `quay.io/team` is tried before `quay.io`.
        self._index = sorted(self._credentials, reverse=True)

    @property
    def keys(self) -> list[str]:
        """The normalised keys in the order they are tried."""
        return list(self._index)

    def lookup(self, image: str) -> list[Credentials]:
        """Every credential whose key covers `image` (`host/path`, as ggcr passes a repository name), in try
        order; the `index.docker.io` credentials for a Docker Hub image nothing else covers; else empty."""
        found = [cred for key in self._index if keyring_urls_match(key, image) for cred in self._credentials[key]]
        if not found and is_default_registry_match(image):
            found = list(self._credentials.get(DOCKER_HUB, []))
        return found
