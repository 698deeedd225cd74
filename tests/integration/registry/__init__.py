"""Integration tests of kpack_core.registry against the real envtest registries."""
