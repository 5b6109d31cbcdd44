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
# OUT/sweep.tsv. DuckDB runs when bench/duckdb/node_modules is there (or
# npm can install it) and node is on PATH.
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

echo "== $(date -u +%T) sweep: $sweep"
printf 'system\tcpus\twall_s\tcpu_s\tmax_rss_mib\n' >"$out/sweep.tsv"
store=$work/bench/store
for c in $sweep; do
	for sys in run reduce; do
		if [ "$sys" = reduce ] && [ ! -d "$store" ]; then
			continue
		fi
		rm -rf "$work/sweep-out"
		args=(--out "$work/sweep-out" --job s --clusters "$c")
		if [ "$sys" = run ]; then
			args+=("$work/data")
		else
			args+=(--store "$store")
		fi
		if [ -x /usr/bin/time ]; then
			/usr/bin/time -o "$work/time" -f "%e %U %S %M" "$mce" "$sys" "${args[@]}" >/dev/null 2>&1 || true
			t=$(tail -1 "$work/time")
		else # bash's time: no max RSS
			t=$({ TIMEFORMAT="%R %U %S 0" && time "$mce" "$sys" "${args[@]}" >/dev/null 2>&1; } 2>&1 | tail -1)
		fi
		read -r wall user sys_s rss <<<"$t"
		printf '%s\t%s\t%s\t%s\t%s\n' "$sys" "$c" "$wall" \
			"$(echo "$user $sys_s" | awk '{print $1+$2}')" "$((rss / 1024))" | tee -a "$out/sweep.tsv"
	done
done
rm -rf "$work"
