"""Unit tests of kpack_core.registry."""
