#!/usr/bin/env bash
# tensorinit as a real PID 1 (unshare -fp --mount-proc; needs root, as in CI) and as a child
# subreaper: exit codes, exec failures, signal forwarding, early SIGTERM, zombies, the grace
# drain, and what the child inherits (signal mask, dispositions, descriptors).
set -uo pipefail
: "${TENSORINIT:?path of the tensorinit binary}"
TEST_TMP=${TEST_TMP:-$(mktemp -d)}
rm -rf "$TEST_TMP" && mkdir -p "$TEST_TMP"
T=$TEST_TMP
failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
expect() {  # expect NAME WANT GOT
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: want [$2], got [$3]"; fi
}
ns() { unshare -fp --mount-proc "$@"; }
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# Waits until FILE exists (up to a minute: only turns a hang into a failure on a starved machine).
await_file() {
  local i
  for ((i = 0; i < 6000; i++)); do [[ -e "$1" ]] && return 0; sleep 0.01; done
  return 1
}
# Starts `unshare -fp --mount-proc tensorinit run ARGS` in the background; sets NS_PID (unshare)
# and INIT_PID (tensorinit, PID 1 inside, as seen from here), waiting until it has exec'd.
# Background jobs of a script start with INT and QUIT ignored, and tensorinit hands its child the
# dispositions it got (tested below): start it with defaults, as a container runtime would.
start_pid1() {
  env --default-signal unshare -fp --mount-proc "$TENSORINIT" run "$@" &
  NS_PID=$!
  INIT_PID=""
  local i comm=""
  for ((i = 0; i < 50000; i++)); do
    [[ -z "$INIT_PID" ]] && read -r INIT_PID _ < "/proc/$NS_PID/task/$NS_PID/children" 2>/dev/null
    [[ -n "$INIT_PID" ]] && read -r comm < "/proc/$INIT_PID/comm" 2>/dev/null
    [[ "$comm" == tensorinit ]] && return 0
  done
  return 1
}

# --- exit codes -------------------------------------------------------------------------------
ns "$TENSORINIT" run -- sh -c 'exit 0'; expect "exit 0 passes through" 0 $?
ns "$TENSORINIT" run -- sh -c 'exit 7'; expect "exit 7 passes through" 7 $?
ns "$TENSORINIT" run -- sh -c 'kill -USR2 $$'; expect "killed by SIGUSR2 gives 140" 140 $?
ns "$TENSORINIT" run -- sh -c 'kill -KILL $$'; expect "killed by SIGKILL gives 137" 137 $?
got=$(ns "$TENSORINIT" run -- sh -c 'echo $$'); expect "the child is PID 2 under PID 1" 2 "$got"

# --- exec failures ----------------------------------------------------------------------------
out=$(ns "$TENSORINIT" run -- no-such-command-xyz 2>"$T/err"); code=$?
expect "command not found gives 127" 127 $code
expect "nothing on stdout when exec fails" "" "$out"
grep -q "tensorinit: error: no-such-command-xyz: command not found" "$T/err" \
  && pass "stderr names the missing command" || fail "stderr: $(cat "$T/err")"
printf '#!/bin/sh\nexit 0\n' > "$T/noexec" && chmod 644 "$T/noexec"
ns "$TENSORINIT" run -- "$T/noexec" 2>"$T/err"; expect "not executable gives 126" 126 $?
grep -q "$T/noexec: cannot execute: Permission denied" "$T/err" \
  && pass "stderr names the file that is not executable" || fail "stderr: $(cat "$T/err")"
ns "$TENSORINIT" run -- /tmp 2>/dev/null; expect "a directory gives 126" 126 $?

# --- forwarding of each signal ----------------------------------------------------------------
SIGS="HUP INT QUIT USR1 USR2 ALRM WINCH CONT URG PIPE TSTP TTIN TTOU XCPU PWR RTMIN RTMIN+3 RTMAX"
cat > "$T/trapper.sh" <<'SCRIPT'
out=$1; shift
for s in "$@"; do trap "echo $s >> $out" "$s"; done
trap "echo TERM >> $out; exit 0" TERM
: > "$out.up"
while :; do sleep 0.02; done
SCRIPT
: > "$T/got"
start_pid1 -- bash "$T/trapper.sh" "$T/got" $SIGS
await_file "$T/got.up" || fail "trapper did not start"
for s in $SIGS; do
  kill -s "$s" "$INIT_PID"
  for ((i = 0; i < 6000; i++)); do grep -qx -- "$s" "$T/got" && break; sleep 0.01; done
  grep -qx -- "$s" "$T/got" && pass "SIG$s forwarded" || fail "SIG$s not forwarded"
done
kill -TERM "$INIT_PID"
wait "$NS_PID"; expect "SIGTERM forwarded; the child's code (0) after its trap" 0 $?
expect "every signal arrived once, in order" "$(echo $SIGS TERM | tr ' ' '\n')" "$(cat "$T/got")"
grep -q '^State:.*T' "/proc/$INIT_PID/status" 2>/dev/null && fail "init left stopped"

# --group: the whole process group gets it; without: only the child.
for mode in group single; do
  rm -f "$T/g-"*
  flag=(); [[ $mode == group ]] && flag=(--group)
  start_pid1 "${flag[@]}" -- bash -c '
    (trap "echo helper >> $0; exit 0" USR1; : > $0.helper; while :; do sleep 0.02; done) &
    trap "echo main >> $0; wait; exit 0" USR1; : > $0.up; while :; do sleep 0.02; done' "$T/g-$mode"
  await_file "$T/g-$mode.up"; await_file "$T/g-$mode.helper"
  kill -USR1 "$INIT_PID"
  await_file "$T/g-$mode"; sleep 0.3
  if [[ $mode == group ]]; then
    expect "--group: USR1 reaches the child and its helper" "helper main" "$(sort "$T/g-$mode" | xargs)"
    wait "$NS_PID"
  else
    expect "no --group: USR1 reaches the child only" "main" "$(sort "$T/g-$mode" | xargs)"
    kill -TERM "$INIT_PID"; wait "$NS_PID"
  fi
done

# --- early SIGTERM: sent the moment tensorinit has blocked its signals (first thing in main) -----
# Before that instant (the dynamic loader's share of the exec) nothing can hold a signal for us:
# as PID 1 the kernel even discards a SIGTERM whose disposition is still the default. From then
# on it must never be lost: exit 143 (no child yet, or `sleep` killed by the forwarded TERM),
# never the 5 s watchdog's 137.
sigblk_set() {  # true once /proc/PID/status shows a non-empty blocked set
  local key value
  while read -r key value; do
    [[ $key == SigBlk: ]] && { [[ $value != 0000000000000000 ]]; return; }
  done < "/proc/$1/status"
  return 1
}
early_term() {  # early_term pid1|subreaper
  local lost=0 other=0 ok=0 i pid target
  for ((i = 0; i < 100; i++)); do
    if [[ $1 == pid1 ]]; then
      start_pid1 -- sleep 30 || { other=$((other + 1)); continue; }
      pid=$NS_PID target=$INIT_PID
    else
      "$TENSORINIT" run -- sleep 30 &
      pid=$! target=$!
      local comm=""
      while [[ "$comm" != tensorinit ]]; do read -r comm < "/proc/$pid/comm" || break; done
    fi
    until sigblk_set "$target" 2>/dev/null; do kill -0 "$target" 2>/dev/null || break; done
    kill -TERM "$target"
    ( sleep 5; kill -KILL "$target" 2>/dev/null ) 2>/dev/null & local watchdog=$!
    wait "$pid" 2>/dev/null; local code=$?
    kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
    case $code in 143) ok=$((ok + 1)) ;; 137) lost=$((lost + 1)) ;; *) other=$((other + 1)) ;; esac
  done
  expect "early SIGTERM as $1: never lost (100 runs: $ok x 143)" "0 0" "$lost $other"
}
early_term pid1
early_term subreaper

# --- zombies ----------------------------------------------------------------------------------
# 30 orphans exit at about the same time (coalesced SIGCHLDs), re-parented to the init.
zombie_script='
  for i in $(seq 30); do sh -c "sleep 0.2 &"; done
  sleep 0.2; while pgrep -x sleep >/dev/null; do sleep 0.05; done; sleep 0.2
  z=$(ps -e -o stat= | grep -c "^Z"); echo "$z"'
got=$(ns "$TENSORINIT" run -- sh -c "$zombie_script"); expect "as PID 1: orphans reaped, no zombies" 0 "$got"
# Not PID 1: orphans come to us as subreaper (their parent after re-parenting is the init).
got=$("$TENSORINIT" run -- sh -c '
  init=$PPID
  for i in $(seq 30); do sh -c "sleep 1 & echo \$! >> '"$T"'/orphans"; done
  read -r first < '"$T"'/orphans
  awk "{print \$4}" /proc/$first/stat
  sleep 1.3; ps -o stat= --ppid $init | grep -c "^Z"')
expect "as subreaper: orphans re-parented to the init, then reaped" 0 "$(echo "$got" | tail -1)"
orphan_parent=$(echo "$got" | head -1)
[[ -n "$orphan_parent" && "$orphan_parent" != 1 ]] && pass "orphan's parent is the init ($orphan_parent), not PID 1" \
  || fail "orphan's parent: $orphan_parent"

# --- shutdown drain ---------------------------------------------------------------------------
# A helper that traps TERM gets it when the main child exits, and finishes its cleanup; the drain
# ends when it does, not at the grace (a minute: far beyond any scheduling delay).
start=$(ms_now)
ns "$TENSORINIT" run --grace 60s -- sh -c '
  sh -c "trap \"sleep 0.2; echo cleaned > '"$T"'/cleanup; exit 0\" TERM; : > '"$T"'/h.up; while :; do sleep 0.02; done" &
  while [ ! -e '"$T"'/h.up ]; do sleep 0.01; done; exit 3'
code=$?; took=$(($(ms_now) - start))
expect "main child's code after the drain" 3 $code
expect "helper that traps TERM ran its cleanup" cleaned "$(cat "$T/cleanup" 2>/dev/null)"
((took < 30000)) && pass "drain ended when the helper did (${took} ms < grace 60 s)" || fail "drain took ${took} ms"

# A helper that ignores TERM is killed after the grace (not PID 1: we can see it gone).
start=$(ms_now)
"$TENSORINIT" run --grace 500ms -- sh -c '
  sh -c "trap \"\" TERM; echo \$\$ > '"$T"'/stubborn; while :; do sleep 0.02; done" &
  while [ ! -s '"$T"'/stubborn ]; do sleep 0.01; done; exit 4'
code=$?; took=$(($(ms_now) - start))
expect "main child's code after killing the stubborn helper" 4 $code
# Only SIGKILL ends the helper (the run would hang otherwise); the grace is a lower bound.
((took >= 500)) && pass "stubborn helper killed after the grace (${took} ms)" || fail "took ${took} ms"
kill -0 "$(cat "$T/stubborn")" 2>/dev/null && fail "stubborn helper still alive" || pass "stubborn helper is gone"

# SIGTERM to the init: forwarded; a child that ignores it is killed after the grace (137).
start_pid1 --grace 400ms -- sh -c 'trap "" TERM; : > '"$T"'/ign.up; while :; do sleep 0.02; done'
await_file "$T/ign.up"; start=$(ms_now)
kill -TERM "$INIT_PID"; wait "$NS_PID"; code=$?; took=$(($(ms_now) - start))
expect "child ignoring SIGTERM is SIGKILLed after the grace" 137 $code
((took >= 400)) && pass "after the grace (${took} ms)" || fail "took ${took} ms"

# --- what the child inherits ------------------------------------------------------------------
# Signal mask and ignored set as tensorinit got them (here: USR1 blocked, USR2 and CHLD ignored:
# tini's rule; CHLD is the one the init takes back to reap, and must set again for the child;
# env sets it, as unshare must still reap).
python3 - "$TENSORINIT" "$T/mask" <<'PY'
import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGUSR1})
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.dup2(fd, 1)
os.execv("/usr/bin/unshare", ["unshare", "-fp", "--mount-proc", "env", "--ignore-signal=CHLD", sys.argv[1], "run", "--",
                              "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
PY
expect "the child's exit code, CHLD ignored or not" 0 $?
expect "child's SigBlk is tensorinit's original mask (USR1)" "SigBlk:	0000000000000200" "$(grep SigBlk "$T/mask")"
expect "child's SigIgn is tensorinit's original ignores (USR2, CHLD)" "SigIgn:	0000000000010800" "$(grep SigIgn "$T/mask")"
# Descriptors: whatever tensorinit inherited beyond 0, 1, 2 is not passed on.
got=$( (exec 7</dev/null 9>"$T/fd9"; ns "$TENSORINIT" run -- sh -c 'ls /proc/$$/fd' | xargs) )
expect "child has fds 0 1 2 only" "0 1 2" "$got"
got=$( (exec 7</dev/null; "$TENSORINIT" run -- sh -c 'ls /proc/$$/fd' | xargs) )
expect "child has fds 0 1 2 only (not PID 1)" "0 1 2" "$got"
# Its own process group.
got=$(ns "$TENSORINIT" run -- sh -c 'ps -o pgid= -p $$ | xargs'); expect "child leads its own process group" 2 "$got"

echo "$failures failure(s)"
exit $((failures > 0))
