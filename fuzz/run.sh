#!/usr/bin/env bash
# Runs every fuzz target for a bounded time each (default 60 s), two at a
# time, and prints libFuzzer's final stats. Crashes land in artifacts/<target>/.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
RUSTC_BOOTSTRAP=1 cargo fuzz build
status=0
run() {
    local t="$1"
    mkdir -p "corpus/$t" "seeds/$t"
    local extra=()
    if [ "$t" = evtx ]; then
        # EVTX files are 64 KiB chunks: seed with real ones from the shared
        # corpus (not committed) and allow inputs that large.
        if [ -z "$(ls -A seeds/evtx)" ] && [ -d ../../shared/corpus/sigma/regression ]; then
            find ../../shared/corpus/sigma/regression -name '*.evtx' -size -200k | sort | head -16 |
                while read -r f; do cp "$f" "seeds/evtx/$(basename "$f")"; done
        fi
        # The evtx crate reserves capacity from an untrusted count (address
        # space only; see README): let such a reservation through.
        extra+=(-max_len=200000 -malloc_limit_mb=16384)
    fi
    local build=()
    # The evtx crate's own debug assertions fire on damaged files (release
    # builds compile them out; `vigil hunt` catches the panic either way):
    # fuzz it as it ships, so the target looks for real failures.
    [ "$t" = evtx ] && build+=(-O)
    RUSTC_BOOTSTRAP=1 cargo fuzz run "${build[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 "${extra[@]}" \
        > "corpus/$t.log" 2>&1 || { echo "$t: FOUND A CRASH (see corpus/$t.log and artifacts/$t/)"; return 1; }
    echo "$t: $(grep -E '^stat::number_of_executed_units' "corpus/$t.log" | awk '{print $2}') runs in ${secs} s, no crash"
}
i=0
pids=()
for t in "${targets[@]}"; do
    run "$t" &
    pids+=($!)
    i=$((i + 1))
    if [ $((i % 2)) -eq 0 ]; then
        for p in "${pids[@]}"; do wait "$p" || status=1; done
        pids=()
    fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
