#!/usr/bin/env bash
# Installs cargo-mutants (the mutation-testing tool) from crates.io, at a
# fixed version, unless that version is already installed.
set -euo pipefail
version="${MUTANTS_VERSION:-27.1.0}"
if cargo mutants --version 2>/dev/null | grep -q " ${version}\$"; then
    cargo mutants --version
    exit 0
fi
cargo install --locked cargo-mutants --version "$version"
cargo mutants --version
