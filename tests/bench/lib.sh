# Helpers the bench scripts share (bench.sh, reads.sh, packed.sh, compare_binaries.sh). Source it
# after setting BENCH, the script's name without .sh (the prefix of its log lines and errors).
say() { printf '[%s %(%H:%M:%S)T] %s\n' "$BENCH" -1 "$*" >&2; }
die() { echo "$BENCH.sh: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.6f", b - a }'; }
# Numbers on stdin, one a line -> their median.
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }

volume_manifest() {  # NAME MODEL_DIR TARGET PATH -> PATH: a load of MODEL_DIR as a volume, no handoff
  cat >"$4" <<EOF2
version: 1
model: {name: $1, sources: [{type: volume, path: $2}]}
stage: {target: $3}
handoff: {mode: none}
report: ""
EOF2
  echo "$4"
}
