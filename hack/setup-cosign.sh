#!/usr/bin/env bash
# Builds the cosign CLI (the independent verifier of our signatures in the integration tests) from its Go
# module through the Go module proxy, into .cache/cosign/<version>/cosign. Idempotent: a built binary is
# reused and the script exits at once. Prints the binary's path on its last line.
#
# A user who already has cosign sets COSIGN_BIN to its path; then nothing is built.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/envtest.env
source "$root/hack/envtest.env"

die() { echo "setup-cosign: $*" >&2; exit 1; }
log() { echo "setup-cosign: $*" >&2; }

if [[ -n "${COSIGN_BIN:-}" ]]; then
  [[ -x "$COSIGN_BIN" && ! -d "$COSIGN_BIN" ]] || die "COSIGN_BIN=$COSIGN_BIN is not an executable file"
  log "using cosign from COSIGN_BIN"
  echo "$COSIGN_BIN"
  exit 0
fi

[[ -n "${COSIGN_VERSION:-}" ]] || die "hack/envtest.env does not set COSIGN_VERSION"
version="$COSIGN_VERSION"
dest="$root/.cache/cosign/$version"
bin="$dest/cosign"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  die "no Go toolchain on PATH and COSIGN_BIN is not set.
  Either install Go (>= the version github.com/sigstore/cosign/v2 $version requires),
  or set COSIGN_BIN to a cosign v2 binary."
fi
export GOTOOLCHAIN=local
export CGO_ENABLED=0
# `go install pkg@version` ignores any go.mod, and refuses -mod; do not inherit one from the caller.
unset GOFLAGS
# Keep downloads and the build cache with the other heavy caches so CI can keep them between runs.
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$root/.cache/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$root/.cache/go/build}"

go_version=$(go env GOVERSION)   # e.g. go1.26.8
mkdir -p "$dest"
build_log="$dest/build.log"

# The module's go.mod says which Go it needs; say so plainly instead of letting the build fail obscurely.
if ! cosign_mod=$(go mod download -json "github.com/sigstore/cosign/v2@$version" 2>"$build_log" \
    | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p'); then
  cat "$build_log" >&2
  die "the Go module proxy refused github.com/sigstore/cosign/v2@$version (see the error above)"
fi
[[ -n "$cosign_mod" && -f "$cosign_mod" ]] || { cat "$build_log" >&2; die "could not download the go.mod of cosign $version"; }
needed_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$cosign_mod")
if [[ "$(printf '%s\n%s\n' "$needed_go" "${go_version#go}" | sort -V | head -n1)" != "$needed_go" ]]; then
  die "cosign $version needs Go $needed_go but the installed toolchain is $go_version.
  Install a newer Go, lower COSIGN_VERSION in hack/envtest.env, or set COSIGN_BIN."
fi

log "building cosign $version (first run only, several minutes; cached under .cache/)"
# GOBIN receives the binary under its final name; build into a scratch directory and move it into place so
# an interrupted build never leaves a half-written binary that the cache check above would accept.
scratch="$dest/gobin.tmp"
rm -rf "$scratch"
mkdir -p "$scratch"
if ! GOBIN="$scratch" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$version" \
    "github.com/sigstore/cosign/v2/cmd/cosign@$version" >>"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  die "building cosign $version failed (the exact error is above; full log: .cache/cosign/$version/build.log)"
fi
mv "$scratch/cosign" "$bin"
rm -rf "$scratch"
echo "$bin"
