"""Types and checks shared by Image, Build and SourceResolver in both API versions (kpack's `core/v1alpha1`):
where source code comes from and how it resolved, notary signing, CNB bindings, the builder image of a Build, and
the field checks every kind's `validate` is made of.

Each check takes the value and its path from the object root and returns every violation it finds, so a kind's
`validate` is the concatenation of its checks. Image references are parsed here as go-containerregistry's `name`
package parses them with weak validation, which kpack used: no registry means Docker Hub, no tag means `latest`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

import orjson

from kpack_core.apis.base import ApiModel, LocalObjectReference, ObjectReference
from kpack_core.apis.errors import FieldError, invalid, join, missing

CONTROLLER_USERNAME: Final = "system:serviceaccount:kpack:controller"
"""The user the kpack controller writes as; only it may set the fields v1alpha2 reserves for it."""
DEFAULT_SERVICE_ACCOUNT: Final = "default"
"""The service account a kind uses when it names none."""
OS_LABEL: Final = "kubernetes.io/os"
"""The node label kpack sets on build pods from the builder image's OS; users may not select on it."""
DOCKER_HUB: Final = "index.docker.io"
"""The registry of a reference that names none (`docker.io` is another name for it)."""


# -- source ---------------------------------------------------------------------------------------------------------


class Git(ApiModel):
    """Source code in a git repository."""

    url: str | None = None
    """The repository URL, https (`https://github.com/org/app`) or ssh (`git@github.com:org/app.git`)."""
    revision: str | None = None
    """A branch, tag or commit SHA; branches and tags are polled for new commits."""


class Blob(ApiModel):
    """Source code in an archive (zip, tar, tar.gz) at a URL."""

    url: str | None = None
    """The archive URL; it must be readable without credentials (a token may be part of the URL)."""


class Registry(ApiModel):
    """Source code in the layers of an image."""

    image: str | None = None
    """The image reference, by tag or digest."""
    image_pull_secrets: list[LocalObjectReference] | None = None
    """Secrets (in the same namespace) to pull the image with."""


class SourceConfig(ApiModel):
    """Where the source code comes from: exactly one of `git`, `blob` and `registry`."""

    git: Git | None = None
    """A git repository and revision."""
    blob: Blob | None = None
    """An archive at a URL."""
    registry: Registry | None = None
    """An image holding the source."""
    sub_path: str | None = None
    """The directory inside the source that is the app's root, relative to the source root."""


GitSourceType = Literal["Unknown", "Branch", "Tag", "Commit"]
"""How a git revision resolved: a branch or tag (polled), a commit, or unknown (the remote was unreachable)."""


class ResolvedGitSource(ApiModel):
    """A git source with its revision resolved to a commit."""

    url: str | None = None
    """The repository URL."""
    revision: str | None = None
    """The commit SHA, or the revision as given when it could not be resolved."""
    sub_path: str | None = None
    """The app's directory inside the source."""
    type: GitSourceType | None = None
    """What the given revision named: Branch, Tag, Commit, or Unknown."""


class ResolvedBlobSource(ApiModel):
    """A blob source (never polled; passed through as given)."""

    url: str | None = None
    """The archive URL."""
    sub_path: str | None = None
    """The app's directory inside the source."""


class ResolvedRegistrySource(ApiModel):
    """A registry source (never polled; passed through as given)."""

    image: str | None = None
    """The image reference."""
    sub_path: str | None = None
    """The app's directory inside the source."""
    image_pull_secrets: list[LocalObjectReference] | None = None
    """Secrets to pull the image with."""


class ResolvedSourceConfig(ApiModel):
    """The source as a SourceResolver resolved it: one of `git`, `blob` and `registry`."""

    git: ResolvedGitSource | None = None
    """The resolved git source."""
    blob: ResolvedBlobSource | None = None
    """The blob source."""
    registry: ResolvedRegistrySource | None = None
    """The registry source."""


# -- notary, bindings, builder image ---------------------------------------------------------------------------------


class NotarySecretRef(ApiModel):
    """The Secret holding the notary signing key."""

    name: str | None = None
    """Name of a Secret in the same namespace with the encrypted `<hash>.key` file(s) and a `password` entry."""


class NotaryV1Config(ApiModel):
    """Notary v1 signing."""

    url: str | None = None
    """The notary server URL."""
    secret_ref: NotarySecretRef | None = None
    """The Secret holding the signing key."""


class NotaryConfig(ApiModel):
    """Signing of built images with notary."""

    v1: NotaryV1Config | None = None
    """Notary v1 signing."""


class CNBBinding(ApiModel):
    """A binding in the format of the Cloud Native Buildpacks binding spec."""

    name: str | None = None
    """The binding name (lower-case letters, digits, `-` and `.`); the directory under `/platform/bindings`."""
    metadata_ref: LocalObjectReference | None = None
    """A ConfigMap with the binding metadata (`kind`, `provider`, ...); required."""
    secret_ref: LocalObjectReference | None = None
    """A Secret with the binding's secret values."""


class BuildBuilderSpec(ApiModel):
    """The builder image a Build runs."""

    image: str | None = None
    """The builder image reference, by tag or digest."""
    image_pull_secrets: list[LocalObjectReference] | None = None
    """Secrets (in the Build's namespace) to pull the builder image with."""


# -- image references -----------------------------------------------------------------------------------------------

_REPOSITORY_PATH = re.compile(r"[a-z0-9_./-]{1,255}")
_TAG = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REGISTRY = re.compile(r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference."""

    registry: str
    """The registry host (and port), `index.docker.io` for Docker Hub."""
    repository: str
    """The repository inside the registry (`library/x` for a one-part Docker Hub name)."""
    tag: str | None = None
    """The tag, if one was written."""
    digest: str | None = None
    """The digest (`sha256:...`), if one was written."""

    @property
    def context(self) -> str:
        """The repository with its registry: `registry/repository`."""
        return f"{self.registry}/{self.repository}"


def _parse_repository(value: str) -> tuple[str, str]:
    first, slash, rest = value.partition("/")
    # The first part names a registry only if it looks like a host (a dot, a port or `localhost`), as in Docker.
    registry, path = (first, rest) if slash and (first == "localhost" or "." in first or ":" in first) else ("", value)
    if registry and _REGISTRY.fullmatch(registry) is None:
        raise ValueError(f"invalid registry {registry!r}")
    # Empty components are refused (go-containerregistry let `https://r.io/app` through as registry `https:`).
    if _REPOSITORY_PATH.fullmatch(path) is None or "" in path.split("/"):
        raise ValueError(f"invalid repository {path!r}")
    if registry in ("", "docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return registry, path


def parse_tag(value: str) -> ImageReference:
    """Parse a reference by tag (the tag may be left out); a digest is refused. Raises ValueError."""
    base, tag = value, None
    head, colon, last = value.rpartition(":")
    # A colon followed by a slash belongs to a registry port (`localhost:5000/app`), not to a tag.
    if colon and "/" not in last:
        if _TAG.fullmatch(last) is None:
            raise ValueError(f"invalid tag {last!r}")
        base, tag = head, last
    registry, repository = _parse_repository(base)
    return ImageReference(registry, repository, tag)


def parse_reference(value: str) -> ImageReference:
    """Parse a reference by tag or by digest (`repo@sha256:...`, optionally with a tag too). Raises ValueError."""
    base, at, digest = value.partition("@")
    if not at:
        return parse_tag(value)
    if "@" in digest or _DIGEST.fullmatch(digest) is None:
        raise ValueError(f"invalid digest {digest!r}")
    tagged = parse_tag(base)
    return ImageReference(tagged.registry, tagged.repository, tagged.tag, digest)


def _parses(parse: Callable[[str], ImageReference], value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def check_tag(value: str | None, path: str) -> list[FieldError]:
    """A required image tag (where an image is pushed): missing, or not a tag reference."""
    if not value:
        return [missing(path)]
    return [] if _parses(parse_tag, value) else [invalid(path, value)]


def check_tags(values: Sequence[str] | None, path: str) -> list[FieldError]:
    """Each element a tag reference (`path[i]`)."""
    return [invalid(join(path, f"[{i}]"), v) for i, v in enumerate(values or []) if not _parses(parse_tag, v)]


def check_image(value: str | None, path: str) -> list[FieldError]:
    """A required image reference, by tag or digest: missing, or not a reference."""
    if not value:
        return [missing(path)]
    return [] if _parses(parse_reference, value) else [invalid(path, value)]


def check_same_registry(tag: str | None, others: Sequence[str] | None, path: str) -> list[FieldError]:
    """Each of `others` (tags pushed together with `tag`) in the registry of `tag`; one error per offender (kpack
    named the first only, at the list's path). Tags that do not parse are left to `check_tag`/`check_tags`."""
    try:
        registry = parse_tag(tag or "").registry
    except ValueError:
        return []
    errors = []
    for i, other in enumerate(others or []):
        try:
            got = parse_tag(other).registry
        except ValueError:
            continue
        if got != registry:
            errors.append(
                FieldError(
                    join(path, f"[{i}]"),
                    "all additionalTags must have the same registry as tag",
                    f"expected registry: {registry}, got: {got}",
                )
            )
    return errors


# -- quantities -------------------------------------------------------------------------------------------------------

_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[eE][+-]?[0-9]+)|Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE])?")
_SUFFIXES: Final = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
    "m": Decimal("0.001"),
    "": Decimal(1),
}


def parse_quantity(value: str | int | float) -> Decimal:
    """The value of a Kubernetes resource quantity (`2G`, `500Mi`, `1.5e9`, `100m`). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value}")
    if isinstance(value, int | float):
        value = repr(value)
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not a quantity: {value}")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix not in _SUFFIXES:  # a decimal exponent, `e3` or `E-2`
            return Decimal(number).scaleb(int(suffix[1:]))
        return Decimal(number) * _SUFFIXES[suffix]
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a quantity: {value}") from exc


def check_size(value: str | int | float | None, path: str) -> list[FieldError]:
    """A storage size, if given: a quantity greater than zero (kpack passed any size on to the PVC, which the
    apiserver then refused, failing every build)."""
    if value is None:
        return []
    try:
        size = parse_quantity(value)
    except ValueError:
        return [invalid(path, value)]
    return [] if size > 0 else [FieldError(path, f"invalid value: {value}", "must be greater than zero")]


# -- source, bindings, services ---------------------------------------------------------------------------------------


def check_pull_secrets(refs: Sequence[LocalObjectReference] | None, path: str) -> list[FieldError]:
    """Every pull secret names a Secret."""
    return [missing(join(path, f"[{i}].name")) for i, ref in enumerate(refs or []) if not ref.name]


def check_source(source: SourceConfig | None, path: str) -> list[FieldError]:
    """Exactly one of git, blob and registry, complete; `subPath` relative and inside the source."""
    source = source or SourceConfig()
    given = [name for name in ("git", "blob", "registry") if getattr(source, name) is not None]
    if not given:
        paths = ", ".join(join(path, name) for name in ("git", "blob", "registry"))
        return [FieldError(paths, "expected exactly one, got neither")]
    if len(given) > 1:
        return [FieldError(", ".join(join(path, name) for name in given), "expected exactly one, got both")]
    errors = []
    if source.git is not None:
        errors += [missing(join(path, f"git.{f}")) for f in ("url", "revision") if not getattr(source.git, f)]
    if source.blob is not None and not source.blob.url:
        errors.append(missing(join(path, "blob.url")))
    if source.registry is not None:
        errors += check_image(source.registry.image, join(path, "registry.image"))
        errors += check_pull_secrets(source.registry.image_pull_secrets, join(path, "registry.imagePullSecrets"))
    # The sub-path becomes the volume subPath of the build containers: the kubelet refuses absolute ones and `..`.
    sub_path = source.sub_path or ""
    if sub_path.startswith("/") or ".." in sub_path.split("/"):
        errors.append(FieldError(join(path, "subPath"), f"invalid value: {sub_path}", "must be relative, without .."))
    return errors


_BINDING_NAME = re.compile(r"[a-z0-9\-.]{1,253}")


def _duplicates(names: Sequence[str | None], path: str, what: str) -> list[FieldError]:
    seen: dict[str, int] = {}
    errors = []
    for i, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            paths = f"{join(path, f'[{seen[name]}].name')}, {join(path, f'[{i}].name')}"
            errors.append(FieldError(paths, f'duplicate {what} name "{name}"'))
        seen[name] = i
    return errors


def _check_binding_name(name: str | None, path: str) -> list[FieldError]:
    if not name:
        return [missing(path)]
    return [] if _BINDING_NAME.fullmatch(name) else [invalid(path, name)]


def check_cnb_bindings(bindings: Sequence[CNBBinding] | None, path: str) -> list[FieldError]:
    """CNB bindings: each named (a valid directory name, unique), with a metadata ConfigMap, and a Secret name if a
    secret is referenced."""
    bindings = bindings or []
    errors = _duplicates([b.name for b in bindings], path, "binding")
    for i, binding in enumerate(bindings):
        item = join(path, f"[{i}]")
        errors += _check_binding_name(binding.name, join(item, "name"))
        if binding.metadata_ref is None:
            errors.append(missing(join(item, "metadataRef")))
        elif not binding.metadata_ref.name:
            errors.append(missing(join(item, "metadataRef.name")))
        if binding.secret_ref is not None and not binding.secret_ref.name:
            errors.append(missing(join(item, "secretRef.name")))
    return errors


def check_services(services: Sequence[ObjectReference] | None, path: str, namespace: str | None) -> list[FieldError]:
    """Service bindings: each named (a valid directory name, unique) with a kind; an `apiVersion` for kinds other than
    Secret (the controller reads those as provisioned services); no namespace but the object's own (services are
    always read there, so another would silently mean the wrong object)."""
    services = services or []
    errors = _duplicates([s.name for s in services], path, "service")
    for i, service in enumerate(services):
        item = join(path, f"[{i}]")
        errors += _check_binding_name(service.name, join(item, "name"))
        if not service.kind:
            errors.append(missing(join(item, "kind")))
        elif service.kind != "Secret" and not service.api_version:
            errors.append(missing(join(item, "apiVersion")))
        if service.namespace and service.namespace != namespace:
            errors.append(
                FieldError(
                    join(item, "namespace"),
                    f"invalid value: {service.namespace}",
                    f"a service must be in the object's own namespace ({namespace})",
                )
            )
    return errors


# -- notary, node selector, controller-only fields --------------------------------------------------------------------


def check_notary(notary: NotaryConfig | None, path: str) -> list[FieldError]:
    """If notary v1 signing is configured: a server URL and a key Secret."""
    if notary is None or notary.v1 is None:
        return []
    v1 = join(path, "v1")
    errors = [] if notary.v1.url else [missing(join(v1, "url"))]
    if notary.v1.secret_ref is None or not notary.v1.secret_ref.name:
        errors.append(missing(join(v1, "secretRef.name")))
    return errors


def check_node_selector(selector: dict[str, str] | None, path: str) -> list[FieldError]:
    """No selection on the OS label, which kpack sets from the builder image."""
    if selector and OS_LABEL in selector:
        return [FieldError(path, f'invalid key name "{OS_LABEL}"', "os is determined automatically")]
    return []


def check_controller_only(
    value: object, old_value: object, path: str, username: str | None, message: str
) -> list[FieldError]:
    """A field only the kpack controller may set in v1alpha2, refused when another user sets or changes it.
    `old_value` is the stored object's (None on create): an object already carrying the field (written through
    v1alpha1, or copied by the controller) stays writable, where kpack refused any update of it, a label included.
    `username` None means the caller is not an admission request (a controller checking an object it made)."""
    if not value or username is None or username == CONTROLLER_USERNAME:
        return []
    if old_value and _show(value) == _show(old_value):
        return []
    return [FieldError(path, message)]


def _show(value: object) -> str:
    if isinstance(value, list):
        value = [v.to_json() if isinstance(v, ApiModel) else v for v in value]
    elif isinstance(value, ApiModel):
        value = value.to_json()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def check_one_of_two(first: tuple[str, object], second: tuple[str, object]) -> list[FieldError]:
    """Two spellings of one field (`(path, value)` each): both may be given only with the same value."""
    (first_path, first_value), (second_path, second_value) = first, second
    if first_value is None or second_value is None or _show(first_value) == _show(second_value):
        return []
    return [
        FieldError(
            f"{first_path}, {second_path}",
            "expected exactly one, got both",
            f"{first_path} is {_show(first_value)} but {second_path} is {_show(second_value)}: they are two"
            " spellings of one field; give one, or the same value in both",
        )
    ]
