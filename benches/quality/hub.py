"""Driving the hub's binary: the demo, a dev hub with push and pull, and reading the
feed of unified records it writes."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: A mention as the feed and truth.jsonl name it: (record_type, source_id, role, index).
MentionKey = tuple[str, str, str, int]


def mention_key(obj: dict) -> MentionKey:
    return (obj["record_type"], obj["source_id"], obj["role"], int(obj["index"]))


@dataclass
class Feed:
    #: mention → unified ID of the live entity holding it
    clusters: dict[MentionKey, str]
    #: mention → kind of that entity ("person" / "organisation")
    kinds: dict[MentionKey, str]
    live_persons: int
    live_organisations: int
    merged: int
    #: mentions listed by more than one live entity (should be 0)
    conflicts: int


def read_feed(path: Path) -> Feed:
    """The feed's final state: the last line of each unified ID is its state; a line
    with `merged_into` redirects the ID to its survivor and holds no mention."""
    last: dict[str, dict] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                change = json.loads(line)
                last[change["unified_id"]] = change
    clusters: dict[MentionKey, str] = {}
    kinds: dict[MentionKey, str] = {}
    counts = {"person": 0, "organisation": 0}
    merged = conflicts = 0
    for unified_id, state in last.items():
        if state.get("merged_into"):
            merged += 1
            continue
        sources = state.get("sources") or []
        if sources:
            counts[state["kind"]] = counts.get(state["kind"], 0) + 1
        for source in sources:
            key = mention_key(source)
            if key in clusters:
                conflicts += 1
            clusters[key] = unified_id
            kinds[key] = state["kind"]
    return Feed(clusters, kinds, counts["person"], counts["organisation"], merged, conflicts)


def read_truth(path: Path) -> dict[MentionKey, str]:
    """truth.jsonl of the demo: mention → true entity (`P…` a person, `O…` an
    organisation)."""
    truth = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                truth[mention_key(row)] = row["entity"]
    return truth


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_demo(binary: Path, people: int, directory: Path, seed: int = 1, extra: list[str] | None = None) -> float:
    """`tongban demo --people N --keep DIR` into an emptied DIR; its wall time in
    seconds. The demo's report goes to DIR/demo.log."""
    fresh_dir(directory)
    log = directory / "demo.log"
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(
            [str(binary), "demo", "--people", str(people), "--seed", str(seed), "--keep", str(directory),
             *(extra or [])],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"bench: tongban demo failed ({result.returncode}); see {log}")
    return elapsed


PUSH_RATE = re.compile(r"pushed (\d+) records in ([\d.]+) s")


def push_rate(directory: Path) -> float:
    """Records per second of the demo's pushes, as its report says."""
    found = PUSH_RATE.search((directory / "demo.log").read_text(encoding="utf-8"))
    if not found:
        sys.exit(f"bench: no push rate in {directory / 'demo.log'}")
    return int(found.group(1)) / float(found.group(2))


class DevHub:
    """`tongban dev` on a free loopback port with its store and PKI in `directory`;
    stopped with SIGTERM on exit."""

    LISTENING = re.compile(r"listening on (https://\S+)")

    def __init__(self, binary: Path, directory: Path, extra: list[str] | None = None):
        self.binary = binary
        self.directory = directory
        self.extra = extra or []
        self.endpoint = ""
        self.process: subprocess.Popen | None = None
        self.log_lines: list[str] = []

    def __enter__(self) -> "DevHub":
        self.process = subprocess.Popen(
            [str(self.binary), "dev", "--data-dir", str(self.directory), "--listen", "127.0.0.1:0", *self.extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log_lines.append(line)
            found = self.LISTENING.search(line)
            if found:
                self.endpoint = found.group(1)
                break
            if time.monotonic() > deadline:
                break
        if not self.endpoint:
            self.__exit__(None, None, None)
            sys.exit("bench: tongban dev did not say where it listens:\n" + "".join(self.log_lines))
        # Keep draining its output so that it never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.log_lines.append(line)

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        (self.directory / "dev.log").write_text("".join(self.log_lines), encoding="utf-8")

    def identity(self, name: str) -> Path:
        return self.directory / "pki" / name

    def push(self, department: str, file: Path) -> dict:
        """Pushes a JSON-lines file as `department`; the connector's report."""
        report = file.with_name(file.name + ".report.json")
        result = subprocess.run(
            [
                str(self.binary), "push", "--endpoint", self.endpoint, "--identity", str(self.identity(department)),
                "--file", str(file), "--report", str(report), "--quiet",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            sys.exit(f"bench: tongban push failed:\n{result.stdout}{result.stderr}")
        return json.loads(report.read_text(encoding="utf-8"))

    def pull(self, out: Path) -> None:
        """The platform pulls the whole feed into `out`."""
        result = subprocess.run(
            [str(self.binary), "pull", "--endpoint", self.endpoint, "--identity", str(self.identity("platform")),
             "--out", str(out)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            sys.exit(f"bench: tongban pull failed:\n{result.stdout}{result.stderr}")
