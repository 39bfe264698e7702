#!/usr/bin/env bash
# Fail if any vLLM process the lab started is still running (after the test suite).
left=$(pgrep -af 'gptoss_lab.vllm_cli' || true)
if [ -n "$left" ]; then
  echo "vLLM processes left running after the suite:" >&2
  echo "$left" >&2
  pkill -f 'gptoss_lab.vllm_cli' || true
  exit 1
fi
echo "no vLLM process left running"
