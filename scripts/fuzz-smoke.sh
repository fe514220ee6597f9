#!/usr/bin/env bash
# Fuzz smoke test for the tidings-core codecs: runs every cargo-fuzz target in sdk-core/fuzz for
# FUZZ_SECONDS (default 20) seconds each and exits non-zero on the first crash, leak or timeout.
#
#   scripts/fuzz-smoke.sh                 # all targets, 20 s each
#   FUZZ_SECONDS=300 scripts/fuzz-smoke.sh json_validate
#
# Crashing inputs are saved under sdk-core/fuzz/artifacts/<target>/; reproduce one with
#   (cd sdk-core && cargo +nightly fuzz run <target> fuzz/artifacts/<target>/crash-...)
# New interesting inputs accumulate in sdk-core/fuzz/corpus/<target>/ (git-ignored); the committed
# starting points are in sdk-core/fuzz/seeds/<target>/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/sdk-core/fuzz"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz 0.13.2"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "==> installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi

cd "$root/sdk-core"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

for target in "${targets[@]}"; do
    echo "==> fuzzing $target for ${seconds}s"
    mkdir -p "$fuzz_dir/corpus/$target"
    seeds=()
    if [ -d "$fuzz_dir/seeds/$target" ]; then
        seeds=("$fuzz_dir/seeds/$target")
    fi
    # The first corpus directory receives new inputs; the seeds are only read.
    cargo +nightly fuzz run "$target" "$fuzz_dir/corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -dict="$fuzz_dir/dict/json.dict" -print_final_stats=1
done
echo "==> fuzz smoke passed: ${targets[*]}"
