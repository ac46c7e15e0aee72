#!/usr/bin/env bash
# Runs every fuzz target (or those named after the budget) for SECONDS each, starting from the
# committed seeds in fuzz/corpus/<target>/ and the kept crash inputs in fuzz/regressions/<target>/.
# New inputs libFuzzer finds go to fuzz/work/<target>/ (not committed); a crash stops the run
# and leaves its input in fuzz/artifacts/<target>/. Fix the bug, then copy the input to
# fuzz/regressions/<target>/ so that `cargo test -p pseal --test it robust_fuzz_replay::` replays it.
#
#   fuzz/run.sh 60                 # every target, one minute each
#   fuzz/run.sh 600 deid keys      # two targets, ten minutes each
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`) and a C++ compiler. libFuzzer needs
# nightly compiler flags (-Z sanitizer, -C passes); on a stable toolchain RUSTC_BOOTSTRAP=1
# allows them, which is what this script sets.
set -euo pipefail
cd "$(dirname "$0")"
budget="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(deid bundle_plaintext bundle_file manifest identity config keys)
fi
export RUSTC_BOOTSTRAP=1
# -O: optimised with debug assertions; the address sanitizer stays on (cargo-fuzz's default).
cargo fuzz build -O
status=0
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t" "regressions/$t"
    echo "fuzz: $t for ${budget}s"
    start=$(date +%s)
    # An input that allocates more than 1 GiB at once, or makes the process pass 3 GiB, is a
    # finding like a panic (artifacts/<target>/oom-*): part10::layout refuses declared lengths
    # past the end of a file before dicom-rs reserves them.
    mkdir -p "artifacts/$t"
    before=$(ls "artifacts/$t" | sort || true)
    cargo fuzz run -O "$t" "work/$t" "corpus/$t" "regressions/$t" -- \
        -malloc_limit_mb=1024 -rss_limit_mb=3072 \
        -max_total_time="$budget" -timeout=20 -max_len=262144 \
        -print_final_stats=1 2>"work/$t.log" || true
    after=$(ls "artifacts/$t" | sort || true)
    if [ "$before" != "$after" ] || grep -q 'deadly signal\|panicked at\|out-of-memory' "work/$t.log"; then
        echo "fuzz: $t FOUND A CRASH (see fuzz/work/$t.log and fuzz/artifacts/$t/)"
        grep -m1 -A20 'panicked at\|ERROR: AddressSanitizer' "work/$t.log" || tail -40 "work/$t.log"
        status=1
    fi
    # libFuzzer's closing lines: "Done N runs in S second(s)" and "stat::peak_rss_mb: M".
    last=$(awk '/^Done [0-9]+ runs/ {runs=$2} /^stat::average_exec_per_sec:/ {eps=$2} /^stat::peak_rss_mb:/ {rss=$2}
        END {if (runs != "") printf "%s executions, %s exec/s, peak RSS %s MB (sanitizer included)", runs, eps, rss}' "work/$t.log")
    echo "fuzz: $t done in $(( $(date +%s) - start ))s: $last"
done
exit $status
