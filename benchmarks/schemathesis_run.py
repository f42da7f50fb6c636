"""The full Schemathesis run against a real agent, once per token scope (the suite runs a bounded one:
tests/server/test_openapi_fuzz.py).

python benchmarks/schemathesis_run.py                    # 50 examples per operation and phase, every scope
python benchmarks/schemathesis_run.py --max-examples 200

Starts `crucible-monitor serve` on a free port with a temporary data directory, a read and an operate token beside
the admin one, and runs ``schemathesis run`` with every check but ``positive_data_acceptance`` (times, durations
and label filters are text whose range no schema states). Exits non-zero when any run finds a failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKENS = {"read": "schemathesis-read-token-0001", "operate": "schemathesis-operate-token-01"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    tokens = "".join(f"    - {{name: {s}, scope: {s}, secret: {t}}}\n" for s, t in TOKENS.items())
    config = tmp / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {tmp / 'data'}\n  collect_interval: 2s\n"
        f"  tokens:\n{tokens}storage:\n  fsync: false\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (tmp / "data" / "api_token").exists() or not _answers(port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit("the agent did not start")
        time.sleep(0.2)  # polling a starting process
    return process


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50)
    args = parser.parse_args()
    tool = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or "schemathesis"
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        port = _free_port()
        process = _start(tmp, port)
        try:
            admin = (tmp / "data" / "api_token").read_text(encoding="utf-8").strip()
            for scope, token in {**TOKENS, "admin": admin}.items():
                print(f"== scope {scope}", flush=True)
                run = subprocess.run(
                    [
                        tool,
                        "run",
                        f"http://127.0.0.1:{port}/api/v1/openapi.json",
                        "-H",
                        f"Authorization: Bearer {token}",
                        "--max-examples",
                        str(args.max_examples),
                        "--checks",
                        "all",
                        "--exclude-checks",
                        "positive_data_acceptance",
                    ],
                    cwd=tmp,
                    check=False,
                )
                failed |= run.returncode != 0
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
