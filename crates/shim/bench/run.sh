#!/bin/sh
# Measures the static sidecar-shim: binary size, start-up time, memory, and its overhead
# over running a command directly. Prints a Markdown table (as in crates/shim/BENCHMARKS.md).
#
#   sh crates/shim/bench/run.sh            # from the workspace root
#   RUNS=2000 sh crates/shim/bench/run.sh  # more runs
#   API=1 sh crates/shim/bench/run.sh      # also the size of the `api` build (slow: rustls, ring)
#
# Uses hyperfine when installed (`apt-get install -y hyperfine`), else a python3 timing loop.
# Max RSS comes from GNU time (/usr/bin/time) when installed, else from python3's getrusage.
set -eu

cd "$(dirname "$0")/../../.."
RUNS=${RUNS:-1000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
TRIPLE=x86_64-unknown-linux-gnu
BIN=$TARGET_DIR/$TRIPLE/shim/sidecar-shim
GOAL_SIZE=1310720   # 1.25 MiB
GOAL_START_MS=5

RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --profile shim -p sidecar-shim --target $TRIPLE
size=$(stat -c %s "$BIN")
kind=$(file -b "$BIN" | grep -o 'static[-a-z]* linked' || echo "NOT static")
stripped=$(file -b "$BIN" | grep -o 'not stripped' || echo stripped)

# State and tombstones live on tmpfs, as in the pod (the emptyDir has medium: Memory), so
# that fsync costs what it costs there.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch=$(mktemp -d -p /dev/shm); else scratch=$(mktemp -d); fi
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/state/agent" "$scratch/pending/agent" "$scratch/tombstones"

# Median wall time in ms of a command (no shell in between; the median, because the machine
# may be shared: a mean moves with every load spike). $PREPARE, if set, is a shell command
# run before each run, outside the timing. $STAT=mean gives the mean instead.
time_ms() {
    if command -v hyperfine >/dev/null 2>&1; then
        hyperfine -N -i --warmup 50 --runs "$RUNS" --export-json "$scratch/h.json" \
            ${PREPARE:+--prepare "$PREPARE"} "$@" >/dev/null 2>&1
        python3 -c "import json,sys; print('%.3f' % (json.load(open(sys.argv[1]))['results'][0][sys.argv[2]] * 1000))" "$scratch/h.json" "${STAT:-median}"
    else
        python3 - "$RUNS" "$@" "${PREPARE:-}" "${STAT:-median}" <<'EOF'
import os, shlex, statistics, subprocess, sys, time
runs, argv, prepare, stat = int(sys.argv[1]), shlex.split(sys.argv[2]), sys.argv[3], sys.argv[4]
def once():
    if prepare:
        subprocess.run(prepare, shell=True)
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    os.waitpid(pid, 0)
    return time.perf_counter() - t
for _ in range(50):
    once()
times = [once() for _ in range(runs)]
print('%.3f' % ((statistics.median(times) if stat == 'median' else statistics.mean(times)) * 1000))
EOF
    fi
}

# Times are medians unless a row says otherwise.
# Max RSS in KiB of one run.
max_rss_kib() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
    else
        python3 -c "import resource, subprocess, sys; subprocess.run(sys.argv[1:]); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)" "$@"
    fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
probe="$BIN probe --state $scratch/state/missing"
app="$BIN app --tombstones $scratch/tombstones --name bench -- /bin/true"
true_cmd=/bin/true
t_probe=$(time_ms "$probe" 2>/dev/null)
t_probe_mean=$(STAT=mean time_ms "$probe" 2>/dev/null)
t_true=$(time_ms "$true_cmd")
t_app=$(time_ms "$app" 2>/dev/null)
# Reference: a shell doing the same fork + exec + wait.
t_sh=$(time_ms "/bin/sh -c '/bin/true; :'")
# The native copy's first run: read state, write native-pending atomically, exit 0. The state
# is removed before each run: a second run would become the sidecar and supervise forever.
t_first=$(PREPARE="rm -f $scratch/pending/agent/state" time_ms "$BIN native --state $scratch/pending/agent -- /bin/true" 2>/dev/null)

rss_probe=$(max_rss_kib $probe 2>/dev/null)
rss_app=$(max_rss_kib $app 2>/dev/null)
rss_true=$(max_rss_kib $true_cmd)

# A supervising copy at rest: resident memory while it runs `sleep`.
echo native-pending > "$scratch/state/agent/state"
"$BIN" native --state "$scratch/state/agent" --termination-log "$scratch/tl" -- sleep 30 2>/dev/null &
sup=$!
i=0
while [ "$(cat "$scratch/state/agent/state")" != native-running ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i + 1)); done
sleep 0.2
rss_sup=$(awk '/^VmRSS/ {print $2}' /proc/$sup/status)
kill -TERM $sup
wait $sup 2>/dev/null || true

api_row=""
if [ "${API:-0}" = 1 ]; then
    RUSTFLAGS="-C target-feature=+crt-static" cargo build -q -j 1 --profile shim -p sidecar-shim --features api \
        --target $TRIPLE --target-dir "$TARGET_DIR/api"
    api_size=$(stat -c %s "$TARGET_DIR/api/$TRIPLE/shim/sidecar-shim")
    api_row="| size, \`api\` build (static, stripped) | $api_size bytes ($(python3 -c "print('%.2f' % ($api_size / 1048576))") MiB) | no goal |
"
fi

verdict() { python3 -c "import sys; print('met' if float(sys.argv[1]) < float(sys.argv[2]) else 'MISSED')" "$1" "$2"; }
timer=$(command -v hyperfine >/dev/null 2>&1 && echo "hyperfine -N, $RUNS runs" || echo "python3 posix_spawn loop, $RUNS runs")

cat <<EOF
Machine: $(nproc) cores, $(uname -sr); rustc $(rustc --version | cut -d' ' -f2); timing: $timer;
load average before: $load_before; files on $(df --output=fstype "$scratch" | tail -n 1).

| what | measured | goal |
|---|---|---|
| size, default build ($kind, $stripped) | $size bytes ($(python3 -c "print('%.2f' % ($size / 1048576))") MiB) | < 1.25 MiB: $(verdict "$size" $GOAL_SIZE) |
${api_row}| start-up: \`sidecar-shim probe\` on a missing state, median (mean) | $t_probe ms ($t_probe_mean ms) | < $GOAL_START_MS ms: $(verdict "$t_probe_mean" $GOAL_START_MS) |
| \`/bin/true\` (baseline) | $t_true ms | |
| \`sidecar-shim app ... -- /bin/true\` | $t_app ms | |
| overhead of the supervising wrapper over the command | $(python3 -c "print('%.3f' % ($t_app - $t_true))") ms | |
| reference: \`/bin/sh -c '/bin/true; :'\` (a shell's fork + exec + wait) | $t_sh ms | |
| native first run (read state, write \`native-pending\`, exit) | $t_first ms | |
| max RSS: \`probe\` / \`app -- /bin/true\` / \`/bin/true\` | $rss_probe / $rss_app / $rss_true KiB | |
| resident memory of a supervising copy (VmRSS, child \`sleep\`) | $rss_sup KiB | |
EOF
