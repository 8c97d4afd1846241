"""XML Schema 1.1 dateTimeStamp, the timestamp of VC Data Model 2.0 (``validFrom``) and Data Integrity
proofs (``created``): a dateTime with a mandatory time zone."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from schemas.errors import TabellionError, shown

_DATE_TIME_STAMP: Final = re.compile(
    r"-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})", re.ASCII
)


def check_date_time_stamp(value: Any, what: str, error: type[TabellionError]) -> None:
    """Raise ``error`` naming ``what`` unless ``value`` is a dateTimeStamp of a real date and time."""
    if not isinstance(value, str) or not _DATE_TIME_STAMP.fullmatch(value):
        raise error(f"{what} {shown(value)} is not an XML Schema dateTimeStamp (e.g. 2023-02-24T23:36:38Z)")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise error(f"{what} {shown(value)} is not a valid date and time: {exc}") from exc
