"""What the bulk-seeded benchmarks share: phases run each in a child process of its own, so its peak RSS
(``ru_maxrss``) is that phase's alone, each printing one JSON line with its seconds and peak RSS."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Phase = Callable[[Path, int], dict[str, Any]]


def _child(phases: Mapping[str, Phase], phase: str, workdir: Path, n: int) -> None:
    started = time.perf_counter()
    out = phases[phase](workdir, n)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(
        json.dumps({"phase": phase, "seconds": round(seconds, 2), "peak_rss_mib": round(peak_mib, 1)} | out)
    )


def main(
    module: str, description: str | None, phases: Mapping[str, Phase], *, default_n: str, what: str
) -> None:
    """``python -m <module> [--n N,N] [--workdir DIR]``: every phase for each N, in a fresh child process."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", default=default_n, help=f"{what} counts, comma-separated")
    parser.add_argument("--workdir", type=Path, help="where the working directories go (default: a temp dir)")
    parser.add_argument("--child", nargs=3, metavar=("PHASE", "WORKDIR", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        phase, workdir, n = args.child
        _child(phases, phase, Path(workdir), int(n))
        return
    base = args.workdir or Path(tempfile.mkdtemp(prefix=f"bench-{module.rpartition('.')[2]}-"))
    for n in (int(part) for part in args.n.split(",")):
        workdir = base / f"n{n}"
        print(f"N = {n:,} {what} in {workdir}", flush=True)
        for phase in phases:
            line = subprocess.run(  # noqa: S603 (our own module, with arguments built here)
                [sys.executable, "-m", module, "--child", phase, str(workdir), str(n)],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]  # fmt: skip
            print(f"  {line}", flush=True)
