"""Unit tests of kpack_core.cosign."""
