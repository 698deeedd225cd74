"""Unit tests of kpack_core.cnb: order resolution, validation, labels, layers and assembly."""
