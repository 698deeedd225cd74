"""Integration tests of kpack_core.source against real git servers and registries."""
