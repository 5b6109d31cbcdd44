#!/usr/bin/env bash
# soak: a long run of every command on generated data (not in CI; `make soak`).
# SOAK_SIZE (default 20GB) of messy invoices go through mce run with two
# clusters and the RAM limit near their working set, mce partition and
# mce reduce; it checks that every command exits 0, that reduce's features
# files are byte-identical to run's, that the store verifies, that every row
# the generator wrote is counted, and that the sampled peak RSS stayed within
# the limit plus one poll's growth. It prints the figures for
# docs/reliability.md.
set -euo pipefail
MCE=${MCE:-bin/mce}
SIZE=${SOAK_SIZE:-20GB}
DIR=${SOAK_DIR:-soak}
CLUSTERS=${SOAK_CLUSTERS:-2,1}
LIMIT=${SOAK_RAM_LIMIT:-1GiB}
rm -rf "$DIR"; mkdir -p "$DIR"
secs() { date +%s.%N; }
t0=$(secs); $MCE gen --out "$DIR/data" --seed 11 --size "$SIZE" --files 12 --messy >/dev/null 2>"$DIR/gen.err"; t1=$(secs)
echo "gen $SIZE: $(echo "$t1 - $t0" | bc) s, $(du -sh "$DIR/data" | cut -f1) on disk"
t0=$(secs); $MCE run "$DIR/data" --out "$DIR/run" --clusters "$CLUSTERS" --ram-limit "$LIMIT" --no-progress >"$DIR/run.out" 2>"$DIR/run.err"; t1=$(secs)
tail -1 "$DIR/run.out"
echo "run: $(echo "$t1 - $t0" | bc) s"
t0=$(secs); $MCE partition "$DIR/data" --out "$DIR/store" >"$DIR/partition.out" 2>&1; t1=$(secs)
echo "partition: $(echo "$t1 - $t0" | bc) s; $(grep -h 'peak RSS' "$DIR/partition.out" | tail -1)"
echo "store: $(du -sh "$DIR/store" | cut -f1) on disk"
$MCE store verify "$DIR/store" >"$DIR/verify.out" 2>&1 && echo "store verify: ok"
t0=$(secs); $MCE reduce --store "$DIR/store" --out "$DIR/reduce" --ram-limit "$LIMIT" --no-progress >"$DIR/reduce.out" 2>"$DIR/reduce.err"; t1=$(secs)
tail -1 "$DIR/reduce.out"
echo "reduce: $(echo "$t1 - $t0" | bc) s"
diffs=0
for f in "$DIR"/run/job0/*.features.csv; do
  cmp -s "$f" "$DIR/reduce/job0/$(basename "$f")" || { echo "DIFF $(basename "$f")"; diffs=$((diffs+1)); }
done
echo "reduce vs run: $diffs files differ"
python3 - "$DIR" "$LIMIT" <<'PY'
import csv, json, sys
d, lim = sys.argv[1], sys.argv[2]
truth = {r["file"]: int(r["rows"]) for r in csv.DictReader(open(f"{d}/data/_truth_files.csv"))}
for mode in ("run", "reduce"):
    s = json.load(open(f"{d}/{mode}/job0/summary.json"))
    print(f"{mode}: {s['done']} of {s['files']} done, {s['failed']} failed, {s['rows']} rows, peak RSS {s['peak_rss_bytes']/2**20:.0f} MiB, limit {s['ram_limit_bytes']/2**20:.0f} MiB, {s['restarts']} restarts")
s = json.load(open(f"{d}/run/job0/summary.json"))
print(f"rows generated {sum(truth.values())}, rows run counted {s['rows']}: lost {sum(truth.values()) - s['rows']}")
# Per file and user, the features' invoice_count against the truth: a
# missing user or a short count is rows lost, an extra user or a high one
# rows duplicated. (reduce's files are byte-identical to run's, above.)
import os
want = {}
for r in csv.DictReader(open(f"{d}/data/_truth.csv")):
    want.setdefault(r["file"], {})[r["user"]] = int(r["rows"])
lost = dup = 0
for f, users in want.items():
    base = f
    for z in (".gz", ".gzip", ".zst", ".zstd"):
        base = base.removesuffix(z)
    got = {}
    with open(f"{d}/run/job0/{base}.features.csv", newline="") as fh:
        # The key column, the first, is named after the input's user
        # column (issuer_id, RFC_Emisor…), which the messy files vary.
        for r in csv.DictReader(fh):
            user = r[next(iter(r))]
            if user in got:
                dup += int(r["invoice_count"])
            got[user] = int(r["invoice_count"])
    for u, n in users.items():
        g = got.pop(u, 0)
        lost += max(n - g, 0)
        dup += max(g - n, 0)
    dup += sum(got.values())
print(f"against the truth per file and user: rows lost {lost}, rows duplicated {dup}")
prev, growth, peak = 0.0, 0.0, 0.0
for r in csv.DictReader(open(f"{d}/run/job0/ram_usage.log")):
    t = float(r["total_mib"]); growth = max(growth, t - prev); prev = t; peak = max(peak, t)
print(f"run ram_usage.log: peak {peak:.0f} MiB, largest growth in one poll {growth:.0f} MiB")
PY
