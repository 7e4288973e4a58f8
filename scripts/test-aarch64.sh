#!/usr/bin/env bash
# Cross-tests the aarch64 (NEON) kernels of ziglama-tensor on an x86_64 Linux host under
# qemu user-mode emulation. Debian/Ubuntu host; installs what it needs when run as root.
#
#   scripts/test-aarch64.sh                 # the aarch64 SIMD kernel tests
#   scripts/test-aarch64.sh formats         # any other test filter of ziglama-tensor's lib
#
# The tests run twice: on qemu's default CPU ("max": NEON + dotprod, so both the `sdot` and
# the NEON-only variants are exercised) and on a Cortex-A53 (no dotprod, so the dispatching
# kernels take the NEON-only path). CARGO_TARGET_DIR is honoured as usual.
set -euo pipefail

filter="${1:-simd::aarch64}"
target=aarch64-unknown-linux-gnu
cd "$(dirname "$0")/.."

need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
if ((${#need[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y "${need[@]}" || {
        $sudo apt-get update && $sudo apt-get install -y "${need[@]}"
    }
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

for cpu in max cortex-a53; do
    echo "== qemu-aarch64 -cpu $cpu: cargo test -p ziglama-tensor --lib $filter"
    QEMU_CPU=$cpu cargo test -p ziglama-tensor --target "$target" --lib "$filter"
done
