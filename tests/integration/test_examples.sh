#!/usr/bin/env bash
# Every example manifest is a manifest tensorinit accepts and resolves: config/*.yaml, each
# examples/**/*.yaml that is a tensorinit manifest, and the one inside the Kubernetes ConfigMap.
#  1. `tensorinit plan --json` on this machine: it must parse (exit 0, or 66 when its sources are
#     absent here, 77/69 for remote ones without credentials or network, with every candidate
#     listed); 78 or anything else fails.
#  2. In a root filesystem where each local source path of the manifest holds a model (chroot, as
#     in a container), `plan` must choose the first candidate (exit 0).
# Also: every COPY source in the Dockerfiles exists in the repository; and the MiniLM example end
# to end when its model and numpy are present (examples/minilm/fetch_model.sh; skipped otherwise).
# Needs root (chroot), as CI has.
source "$(dirname "$0")/lib.sh"
root=$(cd "$TESTS_DIR/.." && pwd)
T=$TEST_TMP
[ "$(id -u)" = 0 ] || { echo "needs root (chroot)"; exit 1; }

# A clean environment, plus what example manifests need without a default.
plan_env=(env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin DEMO_CHECKER=/usr/bin/true)

manifests=("$root"/config/*.yaml)
while IFS= read -r f; do
  grep -qE '^version: *1' "$f" && grep -qE '^model:' "$f" && manifests+=("$f")
done < <(find "$root/examples" -name '*.yaml' | sort)
# The manifest held in the Kubernetes ConfigMap (the block under `deployment.yaml: |`).
mkdir -p "$T/extracted"
awk '/^  deployment.yaml: \|/ {on = 1; next} on && /^    / {print substr($0, 5); next} on && NF {on = 0}' \
  "$root/examples/kubernetes/configmap.yaml" >"$T/extracted/kubernetes-configmap.yaml"
check "the ConfigMap holds a manifest" grep -qE '^version: *1' "$T/extracted/kubernetes-configmap.yaml"
manifests+=("$T/extracted/kubernetes-configmap.yaml")

# The root filesystem for step 2: tensorinit and the glibc files it names.
R=$T/rootfs
mkdir -p "$R/usr/local/bin" "$R/tmp" "$R/run/tensorinit"
cp "$TENSORINIT" "$R/usr/local/bin/tensorinit"  # the static first stage, and beside it the program:
cp "$(dirname "$TENSORINIT")/tensorinit-full" "$R/usr/local/bin/tensorinit-full"
for lib in $(ldd "$(dirname "$TENSORINIT")/tensorinit-full" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
  mkdir -p "$R$(dirname "$lib")" && cp -L "$lib" "$R$lib"
done
"$TENSORINIT" synth --size 1MiB --shards 2 "$T/model" >/dev/null 2>&1
"$TENSORINIT" synth --size 1MiB --shards 1 "$T/single" >/dev/null 2>&1
single=$(ls "$T"/single/*.safetensors | head -1)

for m in "${manifests[@]}"; do
  name=${m#"$root"/}; name=${name#"$T"/extracted/}
  code=0
  "${plan_env[@]}" "$TENSORINIT" plan --json -f "$m" >"$T/plan.json" 2>"$T/stderr" || code=$?
  # 0, or a verdict on the sources (66 absent here, 77 no credentials, 69 unreachable ...):
  # the manifest parsed. 78 (bad manifest), 64 or 70 fail.
  case $code in
    0 | 65 | 66 | 69 | 74 | 77) ;;
    *) not_ok "$name: plan exit $code"; sed 's/^/    /' "$T/stderr" | tail -3; continue ;;
  esac
  # Local candidates in order, as "type path" lines; the manifest parsed if plan listed them.
  if ! python3 - "$T/plan.json" >"$T/candidates" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
for c in plan["candidates"]:
    print(c["type"], c.get("path") or c.get("url"))
PY
  then not_ok "$name: plan --json printed no decision"; continue; fi
  ok "$name: parses (plan exit $code, $(wc -l <"$T/candidates") candidates)"

  # Step 2: populate each local path in a fresh copy of the root filesystem, then plan in a chroot.
  rm -rf "$R/models" "$R/mnt" "$R/var"
  first=""
  while read -r type path; do
    case $type in image | volume) ;; *) continue ;; esac
    [ -n "$first" ] || first="$type $path"
    mkdir -p "$R$(dirname "$path")"
    if [[ $path == *.safetensors ]]; then cp "$single" "$R$path"; else cp -r "$T/model" "$R$path"; fi
  done <"$T/candidates"
  if [ -z "$first" ]; then ok "$name: no local source to resolve (remote only)"; continue; fi
  cp "$m" "$R/manifest.yaml"
  code=0
  timeout 30 "${plan_env[@]}" chroot "$R" /usr/local/bin/tensorinit plan --json -f /manifest.yaml \
    >"$T/plan.json" 2>"$T/stderr" || code=$?
  chosen=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["chosen"] or {}; print(c.get("type"), c.get("path"))' \
    "$T/plan.json" 2>/dev/null || true)
  if [ "$code" = 0 ] && [ "$chosen" = "$first" ]; then ok "$name: resolves in a container root filesystem (chooses $first)"
  else not_ok "$name: in the root filesystem: exit $code, chose [$chosen], wanted [$first]"; sed 's/^/    /' "$T/stderr" | tail -3; fi
done

# --- the Dockerfiles' COPY sources exist (the build context is the repository root) ----------------
for dockerfile in "$root"/container/Dockerfile "$root"/examples/*/Dockerfile*; do
  [ -f "$dockerfile" ] || continue
  case $dockerfile in *.dockerignore) continue ;; esac
  missing=""
  while read -r -a words; do
    srcs=("${words[@]:1:${#words[@]}-2}")  # COPY SRC... DST
    for src in "${srcs[@]}"; do
      [[ $src == --* ]] && continue 2          # COPY --from=...: from another stage
      src=${src//\$\{MANIFEST\}/deployment.yaml}
      compgen -G "$root/$src" >/dev/null || missing+=" $src"
    done
  done < <(grep -E '^COPY ' "$dockerfile")
  check "${dockerfile#"$root"/}: every COPY source exists${missing:+ (missing:$missing)}" test -z "$missing"
done

# --- MiniLM end to end (when fetched: examples/minilm/fetch_model.sh) ------------------------------
minilm=${MINILM_DIR:-/var/tmp/tensorinit-minilm/model}
python=${PYTHON:-python3}
if [ -f "$minilm/model.safetensors" ] && "$python" -c 'import numpy' 2>/dev/null; then
  code=0
  MINILM_DIR=$minilm MINILM_REPORT=$T/minilm-report.json timeout 300 "$TENSORINIT" run \
    -f "$root/examples/minilm/deployment.yaml" -- "$python" "$root/examples/minilm/server.py" --check \
    --reference numpy >"$T/minilm.out" 2>&1 || code=$?
  if [ "$code" = 0 ]; then ok "MiniLM: $(grep -o 'max |diff| = .*' "$T/minilm.out" | head -1)"
  else not_ok "MiniLM end to end: exit $code"; sed 's/^/    /' "$T/minilm.out" | tail -5; fi
else
  echo "skip - MiniLM end to end (needs $minilm/model.safetensors and numpy: bash examples/minilm/fetch_model.sh)"
fi
finish
