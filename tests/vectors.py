"""Where the known-answer vectors live: ``tests/vectors/``, copied into the repository with their origin and
licence in ``tests/vectors/SOURCES.md``, so that a plain clone tests on its own."""

from __future__ import annotations

from pathlib import Path


def vectors_dir() -> Path:
    path = Path(__file__).resolve().parent / "vectors"
    if not path.is_dir():
        raise FileNotFoundError(f"the test vectors are missing: {path}")
    return path
