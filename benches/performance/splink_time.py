"""Splink's time on the department files tongban-bench wrote: the seven JSON-lines
exports in DIR read into person mentions exactly as benches/quality does
(`extract.person_rows`), linked with benches/quality's city model
(`splink_runs.city`: dedupe, training included), and the wall time printed as one
line of JSON on stdout (progress goes to stderr).

    target/bench-venv/bin/python benches/performance/splink_time.py DIR
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "quality"))

import extract  # noqa: E402
import splink_runs  # noqa: E402

DEPARTMENTS = ["tax", "hrss", "market", "realestate", "housingfund", "construction", "civil"]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: splink_time.py DIR")
    directory = Path(sys.argv[1])
    files = [directory / f"{name}.jsonl" for name in DEPARTMENTS]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f"splink_time.py: missing department files: {', '.join(missing)}")
    started = time.monotonic()
    rows = extract.person_rows(files)
    extract_seconds = time.monotonic() - started
    print(f"bench:   Splink on {len(rows)} person mentions ...", file=sys.stderr, flush=True)
    run = splink_runs.city(rows)
    print(
        json.dumps(
            {
                "seconds": run.seconds,
                "mentions": len(rows),
                "extract_seconds": extract_seconds,
                "clusters": len(set(run.clusters.values())),
                "splink_version": version("splink"),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
