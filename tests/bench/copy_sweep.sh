# Sourced by reads.sh --sweep 1 (needs its FILE, OUT, PROBE, drop, warm, probe, say, METHODS):
# the plain-copy sweep, issue 15 part 2's yardstick ("the best single copy into tmpfs that a plain
# program achieves here"). Every mode x SWEEP_THREADS x SWEEP_REQUESTS copies the file's first
# SWEEP_BYTES into a new tmpfs file once (arena_reads.c), cold (page cache dropped before each)
# for SWEEP_COLD and SWEEP_ANON, warm for SWEEP_WARM; a mode that fails once (copy_file_range:
# EXDEV across filesystems) is reported and skipped. Writes sweep.tsv and sweep.txt (the best 8
# of each temperature, and each mode's best), and adds to METHODS the best 3 cold copies, the best
# 2 warm ones and the best cold read into anonymous memory, to be measured over the whole file in
# the interleaved rounds.
bytes_of() { numfmt --from=iec "${1%iB}"; }
sweep_copies() {
  local limit temp modes m t r failed=" " res
  limit=$(bytes_of "$SWEEP_BYTES")
  printf '# temp\tmode\tthreads\trequest\tbytes\tseconds\tcpu\n' >"$OUT/sweep.tsv"
  say "sweep: $SWEEP_COLD / $SWEEP_ANON (cold), $SWEEP_WARM (warm) x threads $SWEEP_THREADS x requests $SWEEP_REQUESTS, $SWEEP_BYTES each"
  for temp in cold anon warm; do
    case $temp in cold) modes=$SWEEP_COLD ;; anon) modes=$SWEEP_ANON ;; warm) modes=$SWEEP_WARM ;; esac
    for m in $modes; do
      for t in $SWEEP_THREADS; do
        for r in $SWEEP_REQUESTS; do
          [[ $failed == *" $m "* ]] && continue
          if [[ $temp == warm ]]; then warm; else drop; fi
          # The probe's own CPU figure: its copy alone, not freeing it at exit (the rounds count that).
          if res=$("$PROBE" "$m" "$FILE" /dev/shm "$(bytes_of "$r")" "$t" 0 0 "$limit" 2>>"$OUT/stderr.txt"); then
            python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(*sys.argv[2:], r['bytes'], r['seconds'], r['cpu'], sep='\t')" \
              "$res" "$temp" "$m" "$t" "$r" >>"$OUT/sweep.tsv"
          else
            say "sweep: $m failed ($(tail -1 "$OUT/stderr.txt")); skipped"
            failed+="$m "
          fi
        done
      done
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
        print(f"  {r[1]:<16} {r[3]:>4} x{r[2]:<2} {rate(r):6.2f} {float(r[6]) / (int(r[4]) / 1e9):6.2f}", file=out)
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
