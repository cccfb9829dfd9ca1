"""The synthetic city: `tongban demo --people N --keep DIR` generates it, pushes every
department's export through the gateway and pulls the feed; we score the feed against
the generator's truth.jsonl, and run Splink on the same exports' person mentions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import extract
import hub
import scoring

DEPARTMENTS = ["tax", "hrss", "market", "realestate", "housingfund", "construction", "civil"]
KINDS = {"P": "person", "O": "organisation"}


@dataclass
class CityRun:
    people: int
    directory: Path
    hub_seconds: float
    #: kind → the hub's score
    hub: dict[str, scoring.Score]
    feed: hub.Feed


def run_hub(binary: Path, people: int, directory: Path) -> CityRun:
    seconds = hub.run_demo(binary, people, directory)
    truth = hub.read_truth(directory / "truth.jsonl")
    feed = hub.read_feed(directory / "unified.jsonl")
    scores = {}
    for prefix, kind in KINDS.items():
        kind_truth = {m: e for m, e in truth.items() if e.startswith(prefix)}
        scores[kind] = scoring.pairwise(kind_truth, feed.clusters)
    return CityRun(people, directory, seconds, scores, feed)


def person_truth(directory: Path) -> dict[str, str]:
    """Person mentions of truth.jsonl, keyed as extract.py's unique_id."""
    return {
        "|".join(str(part) for part in mention): entity
        for mention, entity in hub.read_truth(directory / "truth.jsonl").items()
        if entity.startswith("P")
    }


@dataclass
class Extraction:
    rows: list[dict]
    seconds: float
    #: rows extracted whose mention the truth does not know (broken records), dropped
    dropped: int


def person_rows(directory: Path, truth: dict[str, str]) -> Extraction:
    """Every department export's person mentions; only those truth.jsonl knows."""
    started = time.monotonic()
    rows = extract.person_rows(directory / f"{name}.jsonl" for name in DEPARTMENTS)
    kept = [row for row in rows if row["unique_id"] in truth]
    return Extraction(kept, time.monotonic() - started, len(rows) - len(kept))
