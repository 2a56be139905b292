# Sourced by reads.sh --sweep 1 (needs its FILE, OUT, PROBE, drop, warm, say, METHODS): the
# plain-copy sweep, issue 15 part 2's yardstick ("the best single copy into tmpfs that a plain
# program achieves here"). Each mode copies the file's first SWEEP_BYTES into a new tmpfs file
# (arena_reads.c), cold (page cache dropped before each) for SWEEP_COLD and SWEEP_ANON, warm for
# SWEEP_WARM. Per mode a coordinate search: every SWEEP_THREADS at the first of SWEEP_REQUESTS_AT
# (1M), then every SWEEP_REQUESTS at the fastest thread count (SWEEP_FULL=1: the whole grid,
# 192 runs, about 3x as long). A mode that fails once (copy_file_range: EXDEV across filesystems)
# is reported and skipped. Writes sweep.tsv and sweep.txt (the best 8 of each temperature, and
# each mode's best), and adds to METHODS the best 3 cold copies, the best 2 warm ones and the best
# cold read into anonymous memory, measured over the whole file in the interleaved rounds.
bytes_of() { numfmt --from=iec "${1%iB}"; }
sweep_one() {  # temp mode threads request -> a line of sweep.tsv; fails when the probe does
  local res
  if [[ $1 == warm ]]; then warm; else drop; fi
  # The probe's own CPU figure: its copy alone, not freeing it at exit (the rounds count that).
  res=$("$PROBE" "$2" "$FILE" /dev/shm "$(bytes_of "$4")" "$3" 0 0 "$(bytes_of "$SWEEP_BYTES")" 2>>"$OUT/stderr.txt") || return 1
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(*sys.argv[2:], r['bytes'], r['seconds'], r['cpu'], sep='\t')" \
    "$res" "$@" >>"$OUT/sweep.tsv"
}
fastest_threads() {  # temp mode request -> the thread count of that row with the highest rate
  awk -F'\t' -v t="$1" -v m="$2" -v r="$3" '$1 == t && $2 == m && $4 == r && $5 / $6 > best { best = $5 / $6; n = $3 } END { print n }' "$OUT/sweep.tsv"
}
sweep_copies() {
  local temp modes m t r first
  printf '# temp\tmode\tthreads\trequest\tbytes\tseconds\tcpu\n' >"$OUT/sweep.tsv"
  say "sweep: $SWEEP_COLD / $SWEEP_ANON (cold), $SWEEP_WARM (warm) x threads $SWEEP_THREADS x requests $SWEEP_REQUESTS, $SWEEP_BYTES each"
  for temp in cold anon warm; do
    case $temp in cold) modes=$SWEEP_COLD ;; anon) modes=$SWEEP_ANON ;; warm) modes=$SWEEP_WARM ;; esac
    for m in $modes; do
      first=${SWEEP_REQUESTS_AT:-1M}
      [[ ${SWEEP_FULL:-0} == 1 ]] && first=$SWEEP_REQUESTS
      for r in $first; do
        for t in $SWEEP_THREADS; do
          sweep_one "$temp" "$m" "$t" "$r" || { say "sweep: $m failed ($(tail -1 "$OUT/stderr.txt")); skipped"; continue 3; }
        done
      done
      [[ ${SWEEP_FULL:-0} == 1 ]] && continue
      t=$(fastest_threads "$temp" "$m" "$first")
      for r in $SWEEP_REQUESTS; do [[ $r == "$first" ]] || sweep_one "$temp" "$m" "$t" "$r" || true; done
    done
  done
  local picks
  picks=$(python3 - "$OUT/sweep.tsv" "$OUT/sweep.txt" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith("#")]
rate = lambda r: int(r[4]) / float(r[5]) / 1e9
out = open(sys.argv[2], "w")
for temp in ("cold", "anon", "warm"):
    mine = sorted((r for r in rows if r[0] == temp), key=rate, reverse=True)
    print(f"sweep, {temp} ({'page cache dropped' if temp != 'warm' else 'page-cached'}): GB/s, CPU s/GB (the copy alone)", file=out)
    best_of_mode = {}
    for r in mine: best_of_mode.setdefault(r[1], r)
    shown = mine[:8] + [r for r in best_of_mode.values() if r not in mine[:8]]
    for r in shown:
        print(f"  {r[1]:<20} {r[3]:>4} x{r[2]:<2} {rate(r):6.2f} {float(r[6]) / (int(r[4]) / 1e9):6.2f}", file=out)
    keep = {"cold": 3, "anon": 1, "warm": 2}[temp]
    for r in mine[:keep]:
        name = ("anon read" if temp == "anon" else "plain copy") + f": {r[1]} {r[3]} x{r[2]} ({'warm' if temp == 'warm' else 'cold'})"
        print(f"{name}|{'warm' if temp == 'warm' else 'drop'}|{r[1]} {r[3]} {r[2]}")
PY
)
  cat "$OUT/sweep.txt" >&2
  local name before args mode req threads
  while IFS='|' read -r name before args; do
    read -r mode req threads <<<"$args"
    METHODS+=("$name|$before|probe $mode $(bytes_of "$req") $threads")
  done <<<"$picks"
}
sweep_copies
