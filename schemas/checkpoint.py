"""C2SP tlog-checkpoint bodies: ``<origin>\\n<size>\\n<base64 root>\\n[extension lines]``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from schemas.errors import MalformedCheckpoint

HASH_SIZE = 32


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise MalformedCheckpoint("a checkpoint body ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpoint("a checkpoint has an origin, a size and a root hash line")
    origin, size_text, root_text, *ext = lines
    if not origin:
        raise MalformedCheckpoint("the checkpoint origin line is empty")
    if not size_text.isdigit() or not size_text.isascii() or (size_text != "0" and size_text.startswith("0")):
        raise MalformedCheckpoint(f"checkpoint size {size_text[:30]!r} is not a decimal without leading zeros")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedCheckpoint("the checkpoint root hash is not base64") from exc
    if len(root) != HASH_SIZE:
        raise MalformedCheckpoint(f"the checkpoint root hash is {len(root)} bytes, not {HASH_SIZE}")
    if any(not line for line in ext):
        raise MalformedCheckpoint("a checkpoint extension line is empty")
    return Checkpoint(origin, int(size_text), root, tuple(ext))
