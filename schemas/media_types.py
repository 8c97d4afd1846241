"""Media types Tabellion speaks."""

from typing import Final

COSE: Final = "application/cose"
COSE_KEY_SET: Final = "application/cose-key-set"
CONCISE_PROBLEM: Final = "application/concise-problem-details+cbor"
PROBLEM_JSON: Final = "application/problem+json"
CBOR: Final = "application/cbor"
CHECKPOINT: Final = "text/plain; charset=utf-8"
TILE: Final = "application/octet-stream"
