"""`MultiKeychain`: several keychains asked in order; the first that knows credentials answers.

As ggcr's `authn.NewMultiKeychain`: a keychain answering anonymous passes the question on; an error from any of
them stops the search (a broken secret is not silently replaced by another credential).
"""

from __future__ import annotations

from collections.abc import Sequence

from kpack_core.registry.auth import ANONYMOUS, Credentials, Keychain
from kpack_core.registry.reference import Reference


class MultiKeychain:
    """The first non-anonymous answer of `keychains`, asked in order; anonymous when none has one."""

    def __init__(self, *keychains: Keychain) -> None:
        self.keychains: Sequence[Keychain] = keychains

    def __repr__(self) -> str:
        return f"MultiKeychain({', '.join(type(k).__name__ for k in self.keychains)})"

    async def resolve(self, reference: Reference) -> Credentials:
        for keychain in self.keychains:
            credentials = await keychain.resolve(reference)
            if not credentials.anonymous:
                return credentials
        return ANONYMOUS
