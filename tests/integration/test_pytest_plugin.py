"""The pytest plugin's promise: a server that dies fails that test, and the next test gets a working one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

INNER_TESTS = """
from kpack_core.envtest.controlplane import ControlPlane


async def test_crashes_the_apiserver(control_plane: ControlPlane) -> None:
    await control_plane.apiserver.kill()


async def test_after_the_crash(control_plane: ControlPlane, namespace: str) -> None:
    status, _ = await control_plane.request("GET", f"/api/v1/namespaces/{namespace}")
    assert status == 200
"""

INNER_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
addopts = -p kpack_core.envtest.pytest_plugin
"""


def test_dead_server_fails_its_test_and_the_next_test_gets_a_new_one(pytester: pytest.Pytester) -> None:
    pytester.makeini(INNER_INI)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_crashes_the_apiserver*",
            "*the control plane died during the test; its log ends:*",
            "*--- kube-apiserver*",
        ]
    )
