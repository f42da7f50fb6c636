"""The full Schemathesis run against a real agent, once per token scope (the suite runs a bounded one:
tests/server/test_openapi_fuzz.py).

python benchmarks/schemathesis_run.py                    # 50 examples per operation and phase, every scope
python benchmarks/schemathesis_run.py --max-examples 200
python benchmarks/schemathesis_run.py --max-examples 10 --write   # and its section of docs/reliability.md

Starts `crucible-monitor serve` on a free port with a temporary data directory, a read and an operate token beside
the admin one, and runs ``schemathesis run`` with every check but ``positive_data_acceptance`` (times, durations
and label filters are text whose range no schema states). Each run's requests are counted by status from its HAR
report. Exits non-zero when any run finds a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from daemons import free_port  # noqa: E402  (benchmarks are scripts beside this one)
from doc_sections import write_section  # noqa: E402

TOKENS = {"read": "schemathesis-read-token-0001", "operate": "schemathesis-operate-token-01"}


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


def _summary(output: str) -> dict[str, int]:
    """The counts of schemathesis's last summary line (``1347 generated, 1340 passed, 7 failed, 40 skipped``)."""
    lines = [line for line in output.splitlines() if " generated" in line]
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (generated|passed|failed|errored|skipped)", lines[-1])}


def _statuses(har: Path) -> dict[str, int]:
    """Requests by response status, from the run's HAR report."""
    entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
    counted = Counter(str(e["response"]["status"]) for e in entries)
    return dict(sorted(counted.items()))


def render(results: dict[str, Any], command: str) -> str:
    """The section of docs/reliability.md."""
    lines = [
        "## Schemathesis with a token of each scope",
        "",
        f"Measured by `{command}` on {results['machine']} ({results['date']}): every check but",
        "`positive_data_acceptance`, against a real agent, once per token scope.",
        "",
        "| Scope | Cases | Failures | Requests | 5xx | 403 | Statuses |",
        "|---|---|---|---|---|---|---|",
    ]
    for scope, run in results["scopes"].items():
        statuses = run["statuses"]
        fives = sum(n for code, n in statuses.items() if code.startswith("5"))
        listed = ", ".join(f"{code}: {n}" for code, n in statuses.items())
        lines.append(
            f"| {scope} | {run['cases'].get('generated', 0):,} | {run['cases'].get('failed', 0)} | "
            f"{sum(statuses.values()):,} | {fives} | {statuses.get('403', 0)} | {listed} |"
        )
    lines += [
        "",
        "A failure is any check's: a 5xx, an undocumented status, an answer off its schema, a wrong content type.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="write the counts into docs/reliability.md")
    args = parser.parse_args()
    tool = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or "schemathesis"
    failed = False
    scopes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        port = free_port()
        process = _start(tmp, port)
        try:
            admin = (tmp / "data" / "api_token").read_text(encoding="utf-8").strip()
            for scope, token in {**TOKENS, "admin": admin}.items():
                print(f"== scope {scope}", flush=True)
                har = tmp / f"{scope}.har"
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
                        "--report",
                        "har",
                        "--report-har-path",
                        str(har),
                    ],
                    cwd=tmp,
                    check=False,
                    capture_output=True,
                    text=True,
                )
                print(run.stdout, run.stderr, sep="", flush=True)
                failed |= run.returncode != 0
                scopes[scope] = {"cases": _summary(run.stdout), "statuses": _statuses(har), "exit": run.returncode}
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a stuck agent is a finding, not a reason to leave it running
                process.kill()
                process.wait(timeout=30)
                failed = True
    results = {
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, Linux {platform.release()}",
        "date": time.strftime("%Y-%m-%d"),
        "max_examples": args.max_examples,
        "scopes": scopes,
    }
    print(json.dumps(results, indent=2))
    if args.write:
        command = "python benchmarks/schemathesis_run.py" + "".join(f" {a}" for a in sys.argv[1:])
        write_section("schemathesis", "benchmarks/schemathesis_run.py", render(results, command))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
