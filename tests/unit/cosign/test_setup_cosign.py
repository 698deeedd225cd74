"""hack/setup-cosign.sh: COSIGN_BIN wins, a cached build is reused at once, and every refusal says what to do.

Run on a copy of hack/ (no cache there); a fake `go` on PATH plays the toolchain, so no test builds anything.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
FAKE_GO = """#!/bin/bash
# A stand-in Go toolchain: its version, its `mod download` answer and its `install` outcome come from the env.
case "$1" in
  env) echo "$FAKE_GO_VERSION" ;;
  mod)
    [[ -n "$FAKE_GOMOD" ]] || { echo "proxy says no" >&2; exit 1; }
    printf '{\\n\\t"GoMod": "%s",\\n}\\n' "$FAKE_GOMOD" ;;
  install)
    echo "GOFLAGS=${GOFLAGS-unset} GOTOOLCHAIN=$GOTOOLCHAIN CGO_ENABLED=$CGO_ENABLED $*" > "$FAKE_GO_LOG"
    [[ -z "$FAKE_GO_FAIL" ]] || { echo "compile error in some/package" >&2; exit 2; }
    printf '#!/bin/sh\\necho cosign\\n' > "$GOBIN/cosign"; chmod +x "$GOBIN/cosign" ;;
esac
"""


def _checkout(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "hack", tmp_path / "hack")
    return tmp_path / "hack" / "setup-cosign.sh"


def _version() -> str:
    for line in (REPO / "hack" / "envtest.env").read_text().splitlines():
        if line.startswith("COSIGN_VERSION="):
            return line.split("=", 1)[1]
    raise AssertionError("hack/envtest.env does not pin COSIGN_VERSION")


def _path_with_fake_go(tmp_path: Path) -> str:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(FAKE_GO)
    (bin_dir / "go").chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def _without_go(tmp_path: Path) -> str:
    """A PATH holding only what the script needs before it looks for Go."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run([bash, str(script)], env=env, capture_output=True, text=True, timeout=60)


def test_version_is_a_v2_release() -> None:
    assert _version().startswith("v2.")


def test_cosign_bin_is_used_as_is(tmp_path: Path) -> None:
    script = _checkout(tmp_path)
    binary = tmp_path / "my-cosign"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)

    result = _run(script, {"PATH": "/usr/bin:/bin", "COSIGN_BIN": str(binary)})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(binary)
    assert not (tmp_path / ".cache").exists()


def test_cosign_bin_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    script = _checkout(tmp_path)
    binary = tmp_path / "not-executable"
    binary.write_text("")

    result = _run(script, {"PATH": "/usr/bin:/bin", "COSIGN_BIN": str(binary)})

    assert result.returncode != 0
    assert f"COSIGN_BIN={binary} is not an executable file" in result.stderr


def test_a_cached_binary_is_printed_without_go(tmp_path: Path) -> None:
    script = _checkout(tmp_path)
    cached = tmp_path / ".cache" / "cosign" / _version() / "cosign"
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n")
    cached.chmod(0o755)

    result = _run(script, {"PATH": _without_go(tmp_path)})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(cached)


def test_no_go_names_both_ways_out(tmp_path: Path) -> None:
    script = _checkout(tmp_path)

    result = _run(script, {"PATH": _without_go(tmp_path)})

    assert result.returncode != 0
    assert "no Go toolchain on PATH and COSIGN_BIN is not set" in result.stderr
    assert "set COSIGN_BIN" in result.stderr


def test_missing_version_pin_is_refused(tmp_path: Path) -> None:
    script = _checkout(tmp_path)
    env_file = tmp_path / "hack" / "envtest.env"
    env_file.write_text(
        "".join(f"{line}\n" for line in env_file.read_text().splitlines() if "COSIGN_VERSION" not in line)
    )

    result = _run(script, {"PATH": "/usr/bin:/bin"})

    assert result.returncode != 0
    assert "hack/envtest.env does not set COSIGN_VERSION" in result.stderr


def test_proxy_refusal_is_reported(tmp_path: Path) -> None:
    script = _checkout(tmp_path)

    result = _run(script, {"PATH": _path_with_fake_go(tmp_path), "FAKE_GO_VERSION": "go1.26.0"})

    assert result.returncode != 0
    assert "proxy says no" in result.stderr
    assert f"the Go module proxy refused github.com/sigstore/cosign/v2@{_version()}" in result.stderr


def test_too_old_go_is_refused_with_the_needed_version(tmp_path: Path) -> None:
    script = _checkout(tmp_path)
    gomod = tmp_path / "cosign.mod"
    gomod.write_text("module github.com/sigstore/cosign/v2\n\ngo 1.25.0\n")

    result = _run(
        script, {"PATH": _path_with_fake_go(tmp_path), "FAKE_GO_VERSION": "go1.24.9", "FAKE_GOMOD": str(gomod)}
    )

    assert result.returncode != 0
    assert f"cosign {_version()} needs Go 1.25.0 but the installed toolchain is go1.24.9" in result.stderr
    assert "lower COSIGN_VERSION in hack/envtest.env, or set COSIGN_BIN" in result.stderr


def test_build_failure_shows_the_error_and_leaves_no_binary(tmp_path: Path) -> None:
    script = _checkout(tmp_path)
    gomod = tmp_path / "cosign.mod"
    gomod.write_text("go 1.25.0\n")
    env = {
        "PATH": _path_with_fake_go(tmp_path),
        "FAKE_GO_VERSION": "go1.26.8",
        "FAKE_GOMOD": str(gomod),
        "FAKE_GO_LOG": str(tmp_path / "go.log"),
        "FAKE_GO_FAIL": "1",
    }

    result = _run(script, env)

    assert result.returncode != 0
    assert "compile error in some/package" in result.stderr
    assert f"building cosign {_version()} failed" in result.stderr
    assert not (tmp_path / ".cache" / "cosign" / _version() / "cosign").exists()


def test_build_installs_the_pinned_module_with_local_toolchain(tmp_path: Path) -> None:
    script = _checkout(tmp_path)
    gomod = tmp_path / "cosign.mod"
    gomod.write_text("go 1.25.0\n")
    env = {
        "PATH": _path_with_fake_go(tmp_path),
        "FAKE_GO_VERSION": "go1.26.8",
        "FAKE_GOMOD": str(gomod),
        "FAKE_GO_LOG": str(tmp_path / "go.log"),
        "GOFLAGS": "-mod=vendor",
    }

    result = _run(script, env)

    binary = tmp_path / ".cache" / "cosign" / _version() / "cosign"
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(binary)
    assert binary.is_file()
    log = (tmp_path / "go.log").read_text()
    assert log.startswith("GOFLAGS=unset GOTOOLCHAIN=local CGO_ENABLED=0 install ")  # a caller's -mod is dropped
    assert log.rstrip().endswith(f"github.com/sigstore/cosign/v2/cmd/cosign@{_version()}")
    again = _run(script, {"PATH": _without_go(tmp_path)})
    assert again.stdout.strip() == str(binary)
