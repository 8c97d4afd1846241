"""The log service's configuration of the one problem-details mapper (``transparency.problem_details``): the
SCRAPI endpoints answer RFC 9290 concise problem details (CBOR), every other endpoint RFC 9457 problem+json."""

from __future__ import annotations

from transparency.problem_details import ProblemHandlers

SCRAPI_PREFIXES = ("/entries", "/.well-known/scitt-keys")

PROBLEMS = ProblemHandlers("the server failed unexpectedly; nothing was written", SCRAPI_PREFIXES)
handle_tabellion_error = PROBLEMS.tabellion
handle_unexpected = PROBLEMS.unexpected
