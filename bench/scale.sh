#!/usr/bin/env bash
# bench/scale.sh: mce against DuckDB on a many-core machine, with a
# prebuilt mce and no Go toolchain there (run-reduce, which compiles an
# f.go, is skipped when go is missing).
#
#   bench/scale.sh MCE OUT [SIZE] [FILES] [SWEEP]
#
# generates FILES invoice files of SIZE in all (default 4GB, 16 files),
# runs `mce bench` on every core (3 runs per system, in rounds), then
# times `mce run` and `mce reduce` once at each CPU count of SWEEP
# (default "8 4 2 1"), and writes OUT/scale.md (the bench's report) and
# OUT/sweep.tsv; with LAYOUTS set, OUT/layouts.tsv too (see below).
# DuckDB runs when bench/duckdb/node_modules is there (or npm can install
# it) and node is on PATH.
set -euo pipefail

mce=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-4GB}
files=${4:-16}
sweep=${5:-8 4 2 1}
src=$(cd "$(dirname "$0")/.." && pwd)
cpus=$(nproc)
work=$src/bench/work/scale
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"

{
	echo "# $(date -u +%FT%TZ) $(uname -sr)"
	grep -m1 'model name' /proc/cpuinfo || true
	echo "cpus $cpus, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
	df -h "$work" | tail -1
} | tee "$out/machine.txt"

echo "== $(date -u +%T) gen $size in $files files"
"$mce" gen --seed 1 --files "$files" --size "$size" \
	--heavy-share 0.13 --encoding utf8 --out "$work/data"

skip=unix
command -v go >/dev/null || skip=$skip,run-reduce
echo "== $(date -u +%T) bench at $cpus CPUs (skip $skip)"
"$mce" bench -mce "$mce" -src "$src" -data "$work/data" -cpus "$cpus" -runs "${RUNS:-3}" \
	-skip "$skip" -keep-data -work "$work/bench" -out "$out" >"$out/bench.stdout" 2>"$out/bench.stderr" || {
	echo "bench failed: $(tail -3 "$out/bench.stderr")"
}
[ -f "$out/latest.md" ] && cp "$out/latest.md" "$out/scale.md"

# timeit SYS CLUSTERS: one timed `mce SYS` (run or reduce) with
# --clusters CLUSTERS ("default": none given), as a line of TSV.
store=$work/bench/store
timeit() {
	local sys=$1 clusters=$2
	rm -rf "$work/sweep-out"
	local args=(--out "$work/sweep-out" --job s)
	[ "$clusters" != default ] && args+=(--clusters "$clusters")
	if [ "$sys" = run ]; then
		args+=("$work/data")
	else
		args+=(--store "$store")
	fi
	local t
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -o "$work/time" -f "%e %U %S %M" "$mce" "$sys" "${args[@]}" >/dev/null 2>&1 || true
		t=$(tail -1 "$work/time")
	else # bash's time: no max RSS
		t=$({ TIMEFORMAT="%R %U %S 0" && time "$mce" "$sys" "${args[@]}" >/dev/null 2>&1; } 2>&1 | tail -1)
	fi
	local wall user sys_s rss
	read -r wall user sys_s rss <<<"$t"
	printf '%s\t%s\t%s\t%s\t%s\n' "$sys" "$clusters" "$wall" \
		"$(echo "$user $sys_s" | awk '{print $1+$2}')" "$((rss / 1024))"
}

# both CLUSTERS TSV: timeit run, and reduce when the bench made a store,
# appended to TSV.
both() {
	timeit run "$1" | tee -a "$2"
	if [ -d "$store" ]; then
		timeit reduce "$1" | tee -a "$2"
	fi
}

echo "== $(date -u +%T) sweep: $sweep"
printf 'system\tcpus\twall_s\tcpu_s\tmax_rss_mib\n' >"$out/sweep.tsv"
for c in $sweep; do
	both "$c" "$out/sweep.tsv"
done

# LAYOUTS (e.g. "default $cpus 8,8"): cluster layouts on every CPU, each
# timed RUNS times (in rounds) for run and reduce.
if [ -n "${LAYOUTS:-}" ]; then
	echo "== $(date -u +%T) layouts: $LAYOUTS"
	printf 'system\tclusters\twall_s\tcpu_s\tmax_rss_mib\n' >"$out/layouts.tsv"
	for _ in $(seq "${RUNS:-3}"); do
		for l in $LAYOUTS; do
			both "$l" "$out/layouts.tsv"
		done
	done
fi
rm -rf "$work"
