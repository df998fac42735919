#!/usr/bin/env bash
# Runs the pysampler fuzz targets with cargo-fuzz (libFuzzer).
#
#   fuzz/run.sh setup                  install cargo-fuzz if missing; capture the seeds if missing
#   fuzz/run.sh smoke [SECONDS]        every target for SECONDS in total (default 60), for CI
#   fuzz/run.sh run SECONDS [TARGET…]  each target (default: all) for SECONDS; the corpus grows
#   fuzz/run.sh regressions            replay fuzz/regressions/<target>/* once each
#   fuzz/run.sh build [TARGET…]
#
# Fails (exit 1) on any crash, panic, timeout (-timeout), out-of-memory
# (-rss_limit_mb, -malloc_limit_mb) or leak, leaving the input in
# fuzz/artifacts/<target>/ and the report in $FUZZ_DIR/logs/.
#
# Only stable Rust is needed: cargo-fuzz passes -Zsanitizer=address, which a
# stable compiler accepts with RUSTC_BOOTSTRAP=1 (set here); FUZZ_SANITIZER=none
# builds without AddressSanitizer and without RUSTC_BOOTSTRAP (then
# -malloc_limit_mb is not enforced, only -rss_limit_mb). FUZZ_BUILD_FLAGS
# passes more cargo-fuzz build flags, e.g. `-O` for release semantics
# (no overflow checks; by default cargo-fuzz builds with debug assertions and
# overflow checks, so arithmetic overflow on hostile values is a panic).
#
# PYSAMPLER_FUZZ_TOLERATE_OVERFLOW=1 lets a run get past arithmetic-overflow
# panics (printing each site once in the log) to look for other bugs.
#
# FUZZ_KEEP_GOING=1 (with `run`): fork mode, carry on after each crash.
#
# Known bugs whose fix is outside fuzz/ (listed in fuzz/regressions/README.md,
# whose reproductions still fail `regressions`) are stepped over by `smoke`
# and `run`, so that a run looks for new ones: inputs whose layout has a
# value over FUZZ_LAYOUT_MAX (default 0x10000; PYSAMPLER_FUZZ_LAYOUT_MAX) are
# skipped, and overflows at FUZZ_KNOWN_OVERFLOWS (file:line, comma-separated;
# PYSAMPLER_FUZZ_KNOWN_OVERFLOWS) end an input quietly (printed once per
# site). FUZZ_KNOWN_BUGS=0 turns both off.
#
# Environment: FUZZ_DIR (default ~/.cache/pysampler/fuzz: seed snapshots,
# corpora, logs), FUZZ_RSS_MB (512), FUZZ_MALLOC_MB (256), FUZZ_TIMEOUT (5),
# FUZZ_JOBS (parallel libFuzzer workers per target in `run`, default 1),
# CARGO_FUZZ_VERSION (0.13.2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"

export PYSAMPLER_FUZZ_DIR="${FUZZ_DIR:-${PYSAMPLER_FUZZ_DIR:-$HOME/.cache/pysampler/fuzz}}"
fuzz_dir="$PYSAMPLER_FUZZ_DIR"
sanitizer="${FUZZ_SANITIZER:-address}"
rss_mb="${FUZZ_RSS_MB:-512}"
malloc_mb="${FUZZ_MALLOC_MB:-256}"
timeout_s="${FUZZ_TIMEOUT:-5}"
jobs="${FUZZ_JOBS:-1}"
cargo_fuzz_version="${CARGO_FUZZ_VERSION:-0.13.2}"
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS:-}"
if [ ${#build_flags[@]} -gt 0 ]; then
    # Other flags, other build: keep it apart so that switching does not
    # rebuild everything.
    build_flags+=(--target-dir "fuzz/target/flags$(printf '%s' "${build_flags[*]}" | tr -c 'A-Za-z0-9' '_')")
fi
targets_all=(walker walker_layout linetable snapshot_file recording)
# The walker targets get the larger share of smoke time.
declare -A smoke_share=([walker]=30 [walker_layout]=20 [linetable]=15 [snapshot_file]=20 [recording]=15)

if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi
# ASan's default 256 MiB quarantine of freed memory would count against
# -rss_limit_mb; keep it small so the limit measures the walker.
# (detect_odr_violation=0 as cargo-fuzz sets it.)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16:detect_odr_violation=0"

ensure_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        return
    fi
    local root="$HOME/.cache/pysampler/cargo-fuzz"
    if [ ! -x "$root/bin/cargo-fuzz" ]; then
        echo "installing cargo-fuzz $cargo_fuzz_version into $root"
        cargo install --quiet --locked cargo-fuzz --version "$cargo_fuzz_version" --root "$root"
    fi
    export PATH="$root/bin:$PATH"
}

tool() {
    cargo run --quiet --release --manifest-path fuzz/Cargo.toml --example fuzz-tool -- "$@"
}

ensure_seeds() {
    # The recording seeds need no interpreter: written whenever missing.
    if [ ! -d "$fuzz_dir/seed-corpus/recording" ]; then
        tool recording-seeds
    fi
    if [ -n "$(ls "$fuzz_dir"/snapshots/*.pysnap 2>/dev/null)" ] &&
        [ -d "$fuzz_dir/seed-corpus/walker" ]; then
        return
    fi
    bash "$here/gen-seeds.sh"
}

build() {
    ensure_cargo_fuzz
    local t
    for t in "$@"; do
        cargo fuzz build --sanitizer "$sanitizer" "${build_flags[@]}" "$t"
    done
}

# binary TARGET: the fuzz target's executable, as `build` made it.
binary() {
    local dir="fuzz/target" i
    for ((i = 0; i < ${#build_flags[@]}; i++)); do
        if [ "${build_flags[$i]}" = --target-dir ]; then dir="${build_flags[$((i + 1))]}"; fi
    done
    echo "$dir/$(rustc -vV | sed -n 's/^host: //p')/release/$1"
}

# fuzz_one TARGET SECONDS: one libFuzzer session; returns its status.
fuzz_one() {
    local target="$1" seconds="$2"
    local corpus="$fuzz_dir/corpus/$target" seeds="$fuzz_dir/seed-corpus/$target"
    local log="$fuzz_dir/logs/$target-$(date +%Y%m%d-%H%M%S).log"
    mkdir -p "$corpus" "$seeds" "$(dirname "$log")" "fuzz/artifacts/$target"
    local extra=()
    if [ "$target" = linetable ]; then
        extra+=(-max_len=4096)
    else
        # Inputs as long as the longest seed (a walker seed is the hot bytes).
        local longest
        longest=$(find "$seeds" "$corpus" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -n 1)
        extra+=("-max_len=$(((${longest:-4096} > 4096 ? ${longest:-4096} : 4096) + 64))")
    fi
    if [ "$jobs" -gt 1 ] || [ -n "${FUZZ_KEEP_GOING:-}" ]; then
        # Fork mode: $jobs workers; with FUZZ_KEEP_GOING=1 the run goes on
        # after a crash, timeout or OOM (each input still lands in artifacts/).
        extra+=("-fork=$jobs")
        if [ -n "${FUZZ_KEEP_GOING:-}" ]; then
            extra+=(-ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
        fi
    fi
    echo "== $target: ${seconds}s (log: $log)"
    local marker
    marker="$(mktemp)"
    local status=0
    # The binary directly, not `cargo fuzz run`: that would rebuild when
    # src/ changed meanwhile, and after a run runs cargo once per failing input.
    "$(binary "$target")" "$corpus" "$seeds" \
        -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
        -malloc_limit_mb="$malloc_mb" -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
        "${extra[@]}" >"$log" 2>&1 || status=$?
    # The figures: the last status line, and the final stats.
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' "$log" | tr '\n' ' ' || true
    echo
    grep -E '^pysampler-fuzz: tolerated overflow' "$log" | sed 's/^/    /' || true
    # In fork mode libFuzzer carries on (and exits 0) after a crash: what
    # counts is whether it wrote a failing input.
    local found
    found="$(find "fuzz/artifacts/$target" -type f -newer "$marker" 2>/dev/null)"
    rm -f "$marker"
    if [ -n "$found" ] && [ "$status" -eq 0 ]; then
        status=1
    fi
    if [ -n "$found" ]; then
        echo "failing inputs:"
        echo "$found" | sed 's/^/    /'
    fi
    if [ "$status" -ne 0 ]; then
        echo "!! $target failed (status $status); report:" >&2
        grep -E 'ERROR|panicked|SUMMARY|Test unit written|timeout|out-of-memory|malloc' "$log" | head -n 20 >&2 || true
        echo "   full log: $log" >&2
    fi
    return "$status"
}

known_bugs() {
    if [ "${FUZZ_KNOWN_BUGS:-1}" = 0 ]; then
        unset PYSAMPLER_FUZZ_LAYOUT_MAX PYSAMPLER_FUZZ_KNOWN_OVERFLOWS
        return
    fi
    export PYSAMPLER_FUZZ_LAYOUT_MAX="${FUZZ_LAYOUT_MAX:-${PYSAMPLER_FUZZ_LAYOUT_MAX:-}}"
    export PYSAMPLER_FUZZ_KNOWN_OVERFLOWS="${FUZZ_KNOWN_OVERFLOWS:-${PYSAMPLER_FUZZ_KNOWN_OVERFLOWS:-}}"
    if [ -n "$PYSAMPLER_FUZZ_LAYOUT_MAX$PYSAMPLER_FUZZ_KNOWN_OVERFLOWS" ]; then
        echo "known bugs stepped over: layout values > ${PYSAMPLER_FUZZ_LAYOUT_MAX:-none}; overflows at ${PYSAMPLER_FUZZ_KNOWN_OVERFLOWS:-none} (FUZZ_KNOWN_BUGS=0 to stop)"
    fi
}

cmd="${1:-smoke}"
shift || true
case "$cmd" in
setup)
    ensure_cargo_fuzz
    ensure_seeds
    ;;
build)
    [ $# -gt 0 ] || set -- "${targets_all[@]}"
    build "$@"
    ;;
smoke | run)
    if [ "$cmd" = smoke ]; then
        total="${1:-60}"
        targets=("${targets_all[@]}")
    else
        per="${1:?usage: fuzz/run.sh run SECONDS [TARGET…]}"
        shift
        targets=("$@")
        [ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
    fi
    ensure_cargo_fuzz
    ensure_seeds
    build "${targets[@]}"
    known_bugs
    failed=()
    for t in "${targets[@]}"; do
        if [ "$cmd" = smoke ]; then
            seconds=$((total * ${smoke_share[$t]} / 100))
            [ "$seconds" -ge 5 ] || seconds=5
        else
            seconds="$per"
        fi
        fuzz_one "$t" "$seconds" || failed+=("$t")
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
        exit 1
    fi
    echo "no crash, hang or excessive allocation found"
    ;;
regressions)
    ensure_cargo_fuzz
    # Replayed as they are: no known bug is stepped over here.
    unset PYSAMPLER_FUZZ_LAYOUT_MAX PYSAMPLER_FUZZ_KNOWN_OVERFLOWS PYSAMPLER_FUZZ_TOLERATE_OVERFLOW
    failed=()
    # Only self-contained inputs: walker/walker_layout inputs depend on the
    # seed snapshots of the machine that found them, so their reproductions
    # are kept as exported snapshot files (snapshot_file).
    for t in snapshot_file linetable recording; do
        dir="fuzz/regressions/$t/"
        files=("$dir"*)
        [ -e "${files[0]}" ] || continue
        build "$t"
        for f in "${files[@]}"; do
            [ -f "$f" ] || continue
            case "$f" in *.md | *.txt) continue ;; esac
            if "$(binary "$t")" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
                -malloc_limit_mb="$malloc_mb" "$f" >/dev/null 2>&1; then
                echo "ok    $f"
            else
                echo "FAIL  $f"
                failed+=("$f")
            fi
        done
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "${#failed[@]} regression input(s) still fail" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: fuzz/run.sh setup | smoke [SECONDS] | run SECONDS [TARGET…] | regressions | build [TARGET…]" >&2
    exit 2
    ;;
esac
