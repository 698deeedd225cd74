"""Integration tests of kpack_core.cosign against the real cosign CLI."""
