"""Matching a revision against the refs a remote advertises (`git ls-remote`): pure functions, no git.

The rules are git's own for a short name (gitrevisions(7)), in order: the name itself (`HEAD`,
`refs/heads/main`), `refs/<rev>`, `refs/tags/<rev>`, `refs/heads/<rev>`, `refs/remotes/<rev>`,
`refs/remotes/<rev>/HEAD`. kpack 0.4.0 used the last five, but walked the advertised refs in the outer loop, so
when a name was both a branch and a tag the branch won (`refs/heads/` sorts first); here the rule order decides,
as in git, and the tag wins. The exact-name rule is ours: it lets a revision be a full ref name.

Annotated tags are advertised twice: the tag object, and `<ref>^{}` with the commit it peels to. kpack 0.4.0
returned the tag object's id; we return the commit, which is what a build checks out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kpack_core.source.resolved import GitSourceType

REF_RULES: tuple[str, ...] = (
    "{}",
    "refs/{}",
    "refs/tags/{}",
    "refs/heads/{}",
    "refs/remotes/{}",
    "refs/remotes/{}/HEAD",
)
"""How a revision is expanded into ref names, in order of precedence."""

_PEELED = "^{}"
_SHA1_HEX = 40
_SHA256_HEX = 64
MIN_SHORT_SHA = 4
"""git's shortest abbreviation of an object id."""
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class AdvertisedRef:
    """One ref of `git ls-remote`: its name, the object it points at, and for an annotated tag the commit."""

    name: str
    oid: str
    peeled: str | None = None

    @property
    def commit(self) -> str:
        """The commit this ref names: the peeled id for an annotated tag, else the id itself."""
        return self.peeled or self.oid

    @property
    def type(self) -> GitSourceType:
        """Branch for `refs/heads/*` and for `HEAD` (it follows the default branch), Tag for `refs/tags/*`,
        Unknown for any other ref (kpack 0.4.0's classification)."""
        if self.name.startswith("refs/heads/") or self.name == "HEAD":
            return GitSourceType.BRANCH
        if self.name.startswith("refs/tags/"):
            return GitSourceType.TAG
        return GitSourceType.UNKNOWN


class LsRemoteParseError(ValueError):
    """A line of `git ls-remote` output that is not `<oid>\\t<ref>`."""


def parse_ls_remote(output: str) -> dict[str, AdvertisedRef]:
    """The refs in `git ls-remote` output, by name, in the order advertised; peeled lines fold into their tag."""
    refs: dict[str, AdvertisedRef] = {}
    peeled: dict[str, str] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        oid, tab, name = line.partition("\t")
        if not tab or not name or not is_full_sha(oid):
            raise LsRemoteParseError(f"unexpected ls-remote line {line!r}")
        if name.endswith(_PEELED):
            peeled[name.removesuffix(_PEELED)] = oid
        else:
            refs[name] = AdvertisedRef(name, oid)
    for name, commit in peeled.items():
        if name in refs:
            refs[name] = AdvertisedRef(name, refs[name].oid, commit)
    return refs


def candidate_ref_names(revision: str) -> list[str]:
    """The ref names `revision` may stand for, in order of precedence."""
    return [rule.format(revision) for rule in REF_RULES]


def match_revision(refs: Mapping[str, AdvertisedRef], revision: str) -> AdvertisedRef | None:
    """The advertised ref that `revision` names under the first rule that matches, or None."""
    for name in candidate_ref_names(revision):
        ref = refs.get(name)
        if ref is not None:
            return ref
    return None


def is_full_sha(revision: str) -> bool:
    """A complete object id: 40 lowercase hex digits (SHA-1), or 64 (SHA-256 repositories)."""
    return len(revision) in (_SHA1_HEX, _SHA256_HEX) and _HEX.fullmatch(revision) is not None


def is_short_sha(revision: str) -> bool:
    """An abbreviated object id (4 to 63 hex digits, not a full one). Upper case is accepted, like git."""
    lowered = revision.lower()
    return (
        MIN_SHORT_SHA <= len(lowered) < _SHA256_HEX and not is_full_sha(lowered) and _HEX.fullmatch(lowered) is not None
    )


def advertised_commit(refs: Iterable[AdvertisedRef], sha: str) -> bool:
    """True when some advertised ref points at (or peels to) commit `sha`: it certainly exists on the remote."""
    return any(sha in (ref.oid, ref.peeled) for ref in refs)
