# The chaos harness (tests/chaos/chaos.py), bounded for CI: a fixed list of seeds that covers every
# scenario class, then scenarios from a seed taken from today's date (printed, for replay) until
# about three minutes have gone by on a busy 2-core machine. Exits non-zero on any violation of
# the promise; each one prints the command that replays it. The longer run (at least 2,000
# scenarios) is `python3 tests/chaos/chaos.py --seed S --count 2000`, on demand.
source "$(dirname "$0")/lib.sh"
chaos="python3 $TESTS_DIR/chaos/chaos.py --tensorinit $TENSORINIT"
budget=${CHAOS_CI_SECONDS:-180}
date_seed=$(date -u +%Y%m%d)
echo "chaos: fixed seed 7 (2 scenarios of every class), then seed $date_seed (from the date) for the rest of ${budget}s"
echo "chaos: replay any scenario with: python3 tests/chaos/chaos.py --tensorinit BUILD/tensorinit --replay SEED"
start=$(date +%s)
for cls in load remote faults signals mutate shm concurrent secrets paths replicas; do
  expect_exit 0 "chaos: class $cls, fixed seed 7" $chaos --work "$TEST_TMP/work" --only "$cls" --seed 7 --count 2
  grep -E "VIOLATION|violation:|note:|replay:|HARNESS" "$TEST_TMP/stdout" | sed 's/^/    /' || true
done
left=$((budget - ($(date +%s) - start)))
if [ "$left" -gt 10 ]; then
  expect_exit 0 "chaos: seed $date_seed for ${left}s" $chaos --work "$TEST_TMP/work" --seed "$date_seed" --count 100000 --time-budget "$left"
  grep -E "VIOLATION|violation:|note:|replay:|HARNESS|chaos: [0-9]+ scenarios" "$TEST_TMP/stdout" | sed 's/^/    /' || true
fi
finish
