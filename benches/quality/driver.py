"""The match-quality benchmark: the hub's resolution beside Splink's on the synthetic
city and on FEBRL 3 / FEBRL 4. Run through `benches/quality/run` (which prepares the
venv); see README.md beside this file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import env
import febrl
import hub
import scoring
import synthetic


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benches/quality/run", description=__doc__)
    parser.add_argument(
        "--people",
        default="10000",
        help="comma-separated sizes of the synthetic city (default 10000), e.g. 10000,100000",
    )
    parser.add_argument("--skip-splink", action="store_true", help="only the hub's figures")
    parser.add_argument("--root", type=Path, default=env.repo_root(), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.people = [int(n) for n in args.people.split(",") if n.strip()]
    except ValueError:
        parser.error("--people takes comma-separated integers")
    if not args.people or min(args.people) <= 0:
        parser.error("--people needs at least one positive size")
    return args


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def row(dataset: str, kind: str, hub_score: scoring.Score, hub_seconds: float,
        splink_score: scoring.Score | None = None, splink_seconds: float | None = None, **extra) -> dict:
    return {
        "dataset": dataset,
        "kind": kind,
        "mentions": hub_score.mentions,
        "hub": hub_score.as_dict(),
        "hub_seconds": round(hub_seconds, 2),
        "splink": splink_score.as_dict() if splink_score else None,
        "splink_seconds": round(splink_seconds, 2) if splink_seconds is not None else None,
        **extra,
    }


def run_city(binary: Path, out: Path, people: int, skip_splink: bool) -> list[dict]:
    say(f"synthetic city of {people} people: tongban demo")
    city = synthetic.run_hub(binary, people, out / f"city-{people}")
    say(f"  demo done in {city.hub_seconds:.1f} s; feed: {city.feed.live_persons} persons, "
        f"{city.feed.live_organisations} organisations, {city.feed.merged} merged IDs")
    dataset = f"city-{people}"
    # The same city with probabilistic matching off: what matching costs online.
    keys_only = out / f"city-{people}-keys-only"
    hub.run_demo(binary, people, keys_only, extra=["--no-matching"])
    rate_on, rate_off = hub.push_rate(city.directory), hub.push_rate(keys_only)
    say(f"  push rate {rate_on:.0f} records/s with matching, {rate_off:.0f} with keys only "
        f"(ratio {rate_on / rate_off:.2f})")
    notes = {"feed_conflicts": city.feed.conflicts, "hub_time_covers": "tongban demo: generate, push, pull",
             "push_rate_matching": round(rate_on), "push_rate_keys_only": round(rate_off),
             "push_rate_ratio": round(rate_on / rate_off, 3)}
    rows = []
    person = row(dataset, "person", city.hub["person"], city.hub_seconds, **notes)
    if not skip_splink:
        truth = synthetic.person_truth(city.directory)
        extraction = synthetic.person_rows(city.directory, truth)
        say(f"  splink on {len(extraction.rows)} person mentions")
        import splink_runs

        run = splink_runs.city(extraction.rows)
        score = scoring.pairwise(truth, run.clusters)
        person = row(dataset, "person", city.hub["person"], city.hub_seconds, score, run.seconds,
                     splink_settings=run.settings, splink_extraction_seconds=round(extraction.seconds, 2),
                     splink_rows_dropped_not_in_truth=extraction.dropped, **notes)
        say(f"  splink done in {run.seconds:.1f} s")
    rows.append(person)
    rows.append(row(dataset, "organisation", city.hub["organisation"], city.hub_seconds, **notes))
    return rows


def run_febrl(binary: Path, out: Path, name: str, skip_splink: bool) -> tuple[dict, dict]:
    say(f"{name}: pushing through the hub as HRSS foreign residents")
    dataset = febrl.load(name)
    keys = febrl.soc_sec_id_agreement(dataset)
    hub_run = febrl.run_hub(binary, dataset, out / name)
    say(f"  hub done in {hub_run.seconds:.1f} s: {hub_run.push['accepted']} accepted, "
        f"{hub_run.push['rejected']} rejected; {len(dataset.unwritable)} records without a name left out of both runs")
    notes = {
        "true_links": dataset.true_links,
        "push": hub_run.push,
        "left_out_no_name": dataset.unwritable,
        "feed_conflicts": hub_run.feed_conflicts,
        "hub_time_covers": "tongban dev start, push, pull, stop",
    }
    if skip_splink:
        return row(name, "person", hub_run.score, hub_run.seconds, **notes), keys
    import splink_runs

    say(f"  splink with its documented {name} settings")
    if name == "febrl3":
        run = splink_runs.febrl3(dataset.records)
    else:
        run = splink_runs.febrl4(dataset.records, dataset.parts)
    score = scoring.pairwise(dataset.truth, run.clusters)
    say(f"  splink done in {run.seconds:.1f} s")
    return row(name, "person", hub_run.score, hub_run.seconds, score, run.seconds,
               splink_settings=run.settings, **notes), keys


def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    header = (f"{'dataset':<12} {'kind':<12} {'mentions':>8}  {'hub P':>6} {'hub R':>6} {'hub F1':>6}  "
              f"{'spl P':>6} {'spl R':>6} {'spl F1':>6}  {'hub s':>7} {'splink s':>8}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        s = r["splink"] or {}
        print(
            f"{r['dataset']:<12} {r['kind']:<12} {r['mentions']:>8}  "
            f"{r['hub']['precision']:>6.4f} {r['hub']['recall']:>6.4f} {r['hub']['f1']:>6.4f}  "
            f"{fmt(s.get('precision'), '6.4f'):>6} {fmt(s.get('recall'), '6.4f'):>6} {fmt(s.get('f1'), '6.4f'):>6}  "
            f"{r['hub_seconds']:>7.1f} {fmt(r['splink_seconds'], '8.1f'):>8}"
        )
    print()
    print("P, R, F1: pairwise precision, recall and F1 against the ground truth (see benches/quality/README.md).")


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in ("splink", "duckdb", "recordlinkage", "pandas"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def git_commit(root: Path) -> str | None:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return result.stdout.strip() or None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    root = args.root.resolve()
    started = time.monotonic()
    binary = env.build_hub(root)
    out = root / "target" / "bench-quality"
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for people in args.people:
        rows.extend(run_city(binary, out, people, args.skip_splink))
    keys = {}
    for name in ("febrl3", "febrl4"):
        febrl_row, keys[name] = run_febrl(binary, out, name, args.skip_splink)
        rows.append(febrl_row)
    print_table(rows)
    for name, k in keys.items():
        print(f"{name}: {k['duplicates_soc_sec_id_differs']} of {k['duplicates']} duplicates carry another "
              f"soc_sec_id (passport) than their original; {k['true_pairs_same_soc_sec_id']} of "
              f"{k['true_pairs']} true pairs share it.")
    results = {
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(root),
        "hub_binary": str(binary),
        "versions": versions(),
        "rows": rows,
        "febrl_soc_sec_id": keys,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
