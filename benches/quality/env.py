"""The benchmark's environment: its virtualenv and the hub's release binary.

Run by `benches/quality/run` with the system's Python (standard library only) to
create `target/bench-venv` and install the pinned requirements; imported by the
driver (inside the venv) to build the hub and find its binary.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
MIN_PYTHON = (3, 11)


def repo_root() -> Path:
    return HERE.parent.parent


def venv_dir(root: Path) -> Path:
    return root / "target" / "bench-venv"


def venv_python(root: Path) -> Path:
    return venv_dir(root) / "bin" / "python"


def ensure_venv(root: Path) -> Path:
    """Creates the venv and installs the pinned requirements, unless a stamp says the
    same requirements are installed already. Returns the venv's Python."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"benches/quality needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+, this is {sys.version.split()[0]}")
    directory = venv_dir(root)
    python = venv_python(root)
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = directory / ".requirements.sha256"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    if not python.exists():
        print(f"bench: creating {directory}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(directory)
    print(f"bench: installing {REQUIREMENTS.relative_to(root)} into {directory}", flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(digest + "\n")
    return python


def cargo_target_dir(root: Path) -> Path:
    """$CARGO_TARGET_DIR if set, else what `cargo metadata` says."""
    if os.environ.get("CARGO_TARGET_DIR"):
        target = Path(os.environ["CARGO_TARGET_DIR"])
        return target if target.is_absolute() else root / target
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def build_hub(root: Path) -> Path:
    """`cargo build --release` (incremental: quick when nothing changed); the binary."""
    print("bench: cargo build --release", flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=root, check=True)
    binary = cargo_target_dir(root) / "release" / "tongban"
    if not binary.exists():
        sys.exit(f"bench: no hub binary at {binary} after the build")
    return binary


if __name__ == "__main__":
    ensure_venv(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else repo_root())
