# Signals that reach tensorinit before the server exists, not as PID 1 (someone else is the init).
# The manifest is a FIFO: tensorinit blocks opening it (its signals already blocked), the test
# queues signals and waits until /proc shows them pending, then writes the manifest. No sleeps.
source "$(dirname "$0")/lib.sh"
model=$TEST_TMP/model
"$TENSORINIT" synth --size 1MiB --seed 5 "$model" 2>/dev/null

status_field() {  # status_field PID KEY: the hex value of KEY in /proc/PID/status
  local key value
  while read -r key value; do [ "$key" = "$2:" ] && { echo "$value"; return 0; }; done <"/proc/$1/status"
  return 1
}
# await_fifo PID: until the process waits for a writer on the FIFO (after main blocked its
# signals, or, for a verb that does not supervise, after it restored them).
await_fifo() {
  local i where
  for ((i = 0; i < 60000; i++)); do
    where=$(cat "/proc/$1/wchan" 2>/dev/null) || return 1  # no trailing newline
    [ "$where" = wait_for_partner ] && return 0
    sleep 0.001
  done
  return 1
}
# await_pending PID BITS: until ShdPnd has every one of BITS set.
await_pending() {
  local i v
  for ((i = 0; i < 60000; i++)); do
    v=$(status_field "$1" ShdPnd 2>/dev/null) || return 1
    (( (16#$v & $2) == $2 )) && return 0
    sleep 0.001
  done
  return 1
}
# start_on_fifo NAME ENV_OPTS -- ARGS...: `env ENV_OPTS tensorinit ARGS` in the background with
# its manifest argument being the FIFO $TEST_TMP/NAME.fifo; sets PID.
start_on_fifo() {
  local name=$1 envopts=$2; shift 3
  rm -f "$TEST_TMP/$name.fifo" && mkfifo "$TEST_TMP/$name.fifo"
  # shellcheck disable=SC2086
  env $envopts "$TENSORINIT" "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" &
  PID=$!
  await_fifo "$PID" || not_ok "$name: tensorinit did not open the FIFO"
}
finish_on_fifo() {  # finish_on_fifo NAME MANIFEST: feeds the manifest, waits, sets CODE
  cat "$2" >"$TEST_TMP/$1.fifo"
  CODE=0
  wait "$PID" || CODE=$?
}

# 1. exec mode: USR1 and PIPE queued while the manifest was read must not kill the server.
m=$(manifest exec-usr1 "$model" "report: ''")
start_on_fifo exec-usr1 --default-signal -- run -f "$TEST_TMP/exec-usr1.fifo" -- sh -c 'echo ran'
kill -USR1 "$PID"; kill -PIPE "$PID"; await_pending "$PID" $(((1 << 9) | (1 << 12)))
finish_on_fifo exec-usr1 "$m"
check "exec mode: USR1 + PIPE before exec do not kill the server (exit $CODE)" [ "$CODE" = 0 ]
check "exec mode: the server ran" [ "$(cat "$TEST_TMP/exec-usr1.out")" = ran ]
check "exec mode: one warning line per dropped signal" \
  [ "$(grep -c '^tensorinit: warning: signal .* arrived before the server started: not passed on$' "$TEST_TMP/exec-usr1.err")" = 2 ]
rm -f /dev/shm/tensorinit-exec-usr1*

# 2. exec mode: TERM queued before the load: no server, 143, one error line, nothing in /dev/shm.
m=$(manifest exec-term "$model" "report: ''")
start_on_fifo exec-term --default-signal -- run -f "$TEST_TMP/exec-term.fifo" -- sh -c 'echo ran'
kill -TERM "$PID"; await_pending "$PID" $((1 << 14))
finish_on_fifo exec-term "$m"
check "exec mode: TERM before exec gives 143 (exit $CODE)" [ "$CODE" = 143 ]
check "exec mode: TERM: the server never ran" [ ! -s "$TEST_TMP/exec-term.out" ]
check "exec mode: TERM: one error line" [ "$(grep -c '^tensorinit: error: ' "$TEST_TMP/exec-term.err")" = 1 ]
check "exec mode: TERM: nothing left in /dev/shm" no_leftovers exec-term

# 3. exec mode under nohup: HUP is ignored (not a stop), and the server inherits the ignore.
m=$(manifest exec-nohup "$model" "report: ''")
start_on_fifo exec-nohup "--default-signal --ignore-signal=HUP" -- \
  run -f "$TEST_TMP/exec-nohup.fifo" -- grep SigIgn /proc/self/status
kill -HUP "$PID"; await_pending "$PID" 1
finish_on_fifo exec-nohup "$m"
check "exec mode under nohup: HUP does not stop it (exit $CODE)" [ "$CODE" = 0 ]
check "exec mode under nohup: the server has HUP ignored" \
  [ "$(cat "$TEST_TMP/exec-nohup.out")" = "SigIgn:	0000000000000001" ]
rm -f /dev/shm/tensorinit-exec-nohup*

# 4. A verb that does not supervise (plan; synth alike) under nohup survives a HUP. Regression:
# the ignore was reset at start and only the mask restored, so HUP killed it (129).
m=$(manifest plan-nohup "$model" "report: ''")
start_on_fifo plan-nohup "--default-signal --ignore-signal=HUP" -- plan -f "$TEST_TMP/plan-nohup.fifo"
check "plan: its inherited (empty) mask is back" [ "$(status_field "$PID" SigBlk)" = 0000000000000000 ]
kill -HUP "$PID"
finish_on_fifo plan-nohup "$m"
check "plan under nohup: a HUP is ignored (exit $CODE)" [ "$CODE" = 0 ]

# 5. Signal mode, after-load: a HUP before the server exists stops it (129): no server, nothing
# left. Regression: it was dropped and the server started anyway.
m=$(manifest late-hup "$model" "report: ''" "handoff: {mode: signal, start: after-load}")
start_on_fifo late-hup --default-signal -- run -f "$TEST_TMP/late-hup.fifo" -- sh -c 'echo ran'
kill -HUP "$PID"; await_pending "$PID" 1
finish_on_fifo late-hup "$m"
check "after-load: HUP before the server gives 129 (exit $CODE)" [ "$CODE" = 129 ]
check "after-load: HUP: the server never ran" [ ! -s "$TEST_TMP/late-hup.out" ]
check "after-load: HUP: nothing left in /dev/shm" no_leftovers late-hup

# 6. Signal mode, after-load: USR1 before the server exists is dropped; the server runs.
m=$(manifest late-usr1 "$model" "report: ''" "handoff: {mode: signal, start: after-load}")
start_on_fifo late-usr1 --default-signal -- run -f "$TEST_TMP/late-usr1.fifo" -- sh -c 'echo ran'
kill -USR1 "$PID"; await_pending "$PID" $((1 << 9))
finish_on_fifo late-usr1 "$m"
check "after-load: USR1 before the server is dropped (exit $CODE)" [ "$CODE" = 0 ]
check "after-load: USR1: the server ran" [ "$(cat "$TEST_TMP/late-usr1.out")" = ran ]
finish
