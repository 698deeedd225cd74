"""Shared test configuration. The envtest fixtures come from kpack_core.envtest.pytest_plugin (pyproject)."""

pytest_plugins = ["pytester"]
