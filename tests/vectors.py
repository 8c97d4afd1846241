"""Where the shared known-answer vectors live: ``<repo>/../shared/vectors`` (never copied in)."""

from __future__ import annotations

from pathlib import Path


def vectors_dir() -> Path:
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "vectors").resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"the shared test vectors are missing: {path}")
    return path
