"""Integration tests of kpack_core.keychains: secrets on the real apiserver; credentials proved on real registries
and a real git server."""
