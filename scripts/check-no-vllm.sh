#!/usr/bin/env bash
# Fail if any vLLM or built-in tool server process the lab started is still running (after the test suite).
pattern='gptoss_lab\.vllm_cli|-m gptoss_lab\.builtin\.'
left=$(pgrep -af -- "$pattern" || true)
if [ -n "$left" ]; then
  echo "vLLM or tool server processes left running after the suite:" >&2
  echo "$left" >&2
  pkill -f -- "$pattern" || true
  exit 1
fi
echo "no vLLM or tool server process left running"
