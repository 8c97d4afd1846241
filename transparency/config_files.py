"""Configuration files: TOML (``tomllib``) read into a table, or one error of the caller's kind naming the file and
what is wrong with it (the CLI prints it as one line). What the table must hold is each component's own parser."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from schemas.errors import TabellionError


def read_toml(path: Path, error: type[TabellionError], *, what: str = "") -> dict[str, Any]:
    """The TOML table in ``path``; ``error`` when it cannot be read or is not TOML (``what`` names the file's role
    in the message, e.g. "the witness configuration ")."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what}{path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not TOML: {exc}") from exc
