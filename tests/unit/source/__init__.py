"""Unit tests of kpack_core.source."""
