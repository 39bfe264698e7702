#!/usr/bin/env bash
# Fail if a process of one test run is still running after it, and stop those processes (only those).
#   usage: scripts/check-no-vllm.sh RUN_ID
# RUN_ID is the GPTOSS_LAB_RUN_ID the run was started with (the Makefile sets one per run). Every process
# the lab starts (vLLM and its workers, tool servers, sandboxes) inherits it in its environment, so this
# finds exactly that run's leftovers: never another user's or another terminal's server. Nothing here
# matches processes by name.
set -u
run=${1:-}
if [ -z "$run" ]; then
  echo "usage: $0 RUN_ID (the GPTOSS_LAB_RUN_ID the test run was started with)" >&2
  exit 2
fi

left=()
for environ in /proc/[0-9]*/environ; do
  pid=${environ#/proc/}
  pid=${pid%/environ}
  [ "$pid" = "$$" ] && continue
  # a process may end between the glob and the read: its environ is then gone, and that is fine
  if { tr '\0' '\n' < "$environ"; } 2>/dev/null | grep -qxF "GPTOSS_LAB_RUN_ID=$run"; then
    left+=("$pid")
  fi
done

if [ ${#left[@]} -eq 0 ]; then
  echo "no process of test run $run left running"
  exit 0
fi
echo "processes of test run $run left running after the suite (stopping them):" >&2
for pid in "${left[@]}"; do
  printf '  %s %s\n' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)" >&2
  kill -TERM "$pid" 2>/dev/null || true
done
for _ in $(seq 50); do
  alive=0
  for pid in "${left[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.1
done
for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done  # resource_tracker ignores SIGTERM
exit 1
