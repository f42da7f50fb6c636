#!/usr/bin/env bash
# GPU device check (issue 18), for a machine with an NVIDIA GPU and its driver: install the project in a venv, run
# `crucible-monitor serve` for about a minute with the gpu collector on, then print what an MCP client gets from
# get_metrics(metric="gpu") and get_system_status (through `crucible-monitor mcp` on stdio, next to the agent).
#
#   bash benchmarks/gpu_device_check.sh            # DURATION=60 by default
#   VENV=/path/to/venv bash benchmarks/gpu_device_check.sh   # use a venv that already has the dependencies
#
# Everything goes under $OUT/gpu-check (the device tool's output folder) or a temporary directory: the venv, the
# config, the data directory, agent.log and report.txt (what it printed). Offline machines: the venv sees the
# system's site-packages, and the project installs without its dependencies if the registry cannot be reached.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${OUT:-$(mktemp -d)}/gpu-check
DURATION=${DURATION:-60}
PYTHON=${PYTHON:-python3}
mkdir -p "$WORK"
exec > >(tee "$WORK/report.txt") 2>&1

echo "== the GPU as nvidia-smi sees it"
nvidia-smi --query-gpu=index,name,uuid,driver_version,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,clocks.sm,clocks_event_reasons.active --format=csv || echo "nvidia-smi failed"

if [ -n "${VENV:-}" ]; then
    PY="$VENV/bin/python"
    echo "== using $VENV"
else
    echo "== installing the project into $WORK/venv"
    "$PYTHON" -m venv --system-site-packages "$WORK/venv"
    PY="$WORK/venv/bin/python"
    if ! "$PY" -m pip install -q "$ROOT" 2>"$WORK/pip.log"; then
        echo "pip could not install with dependencies (offline?): installing the project alone (see pip.log)"
        "$PY" -m pip install -q --no-deps --no-build-isolation "$ROOT"
    fi
fi
cd "$ROOT"  # python -m runs this checkout's crucible_monitor
"$PY" - <<'PY'
import pynvml

try:
    pynvml.nvmlInit()
    print("NVML", pynvml.nvmlSystemGetDriverVersion(), "-", pynvml.nvmlDeviceGetCount(), "GPU(s)")
except pynvml.NVMLError as exc:
    print(f"NVML cannot be used here ({exc}): the agent should say no GPU is present")
PY

PORT=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
cat >"$WORK/monitor.yaml" <<EOF
agent:
  listen_addr: 127.0.0.1:$PORT
  data_dir: $WORK/data
  collect_interval: 5s
storage:
  fsync: false
collectors:
  services:
    supervisor:
      enabled: false
  gpu:
    enabled: true
    interval: 5s
EOF

echo "== starting the agent on 127.0.0.1:$PORT for ${DURATION}s"
"$PY" -m crucible_monitor.cli serve --config "$WORK/monitor.yaml" >"$WORK/agent.log" 2>&1 &
AGENT=$!
trap 'kill "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true' EXIT
for _ in $(seq 60); do
    grep -q "agent started" "$WORK/agent.log" && break
    kill -0 "$AGENT" 2>/dev/null || { echo "the agent exited:"; cat "$WORK/agent.log"; exit 1; }
    sleep 1
done
grep -q "agent started" "$WORK/agent.log" || { echo "the agent did not start within 60 s"; cat "$WORK/agent.log"; exit 1; }
sleep "$DURATION"  # the agent collects for a minute: enough points for a report

echo "== MCP: get_metrics(metric='gpu') and get_system_status"
"$PY" - "$WORK/monitor.yaml" <<'PY'
import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters


async def main(config: str) -> None:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "crucible_monitor.cli", "mcp", "--config", config],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        cwd=os.getcwd(),
    )
    async with Client(server) as client:
        for tool, args in (("get_metrics", {"metric": "gpu", "since": "5m"}), ("get_system_status", {})):
            result = await client.call_tool(tool, args)
            print(f"-- {tool}({json.dumps(args)}): is_error={result.is_error}")
            content = result.structured_content
            print(json.dumps(content, indent=1, ensure_ascii=False) if content else result.content[0].text)


asyncio.run(main(sys.argv[1]))
PY

echo "== the gpu collector's health and log lines"
TOKEN=$(cat "$WORK/data/api_token")
"$PY" -c "
import json, sys, httpx
collectors = httpx.get('http://127.0.0.1:$PORT/api/v1/collectors', headers={'Authorization': 'Bearer $TOKEN'}).json()['items']
print(json.dumps([c for c in collectors if c['name'] == 'gpu'], indent=1))
"
grep -i "gpu" "$WORK/agent.log" || echo "(no gpu lines in agent.log)"
echo "== done: $WORK/report.txt"
