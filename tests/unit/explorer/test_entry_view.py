"""An entry page for a statement the log can no longer take but an older log may hold: a CBOR bignum ``iat``
(refused at registration now, ``cwt-time-invalid``, but logged before that rule) is shown in hex, where ``str``
of it raised and took the page down."""

from __future__ import annotations

from explorer.entries import view
from transparency.client.http import LogEntry
from transparency.client.signing import generate_key, sign_statement


def test_a_logged_bignum_iat_is_shown() -> None:
    statement = sign_statement(generate_key(), b"{}", subject="s", content_type="application/json",
                               extra_claims={6: 10**5000})
    shown = dict(view(LogEntry(0, statement, b"")).header())
    claims = next(text for name, text in shown.items() if "iat: " in text)
    assert "iat: 0x" in claims, claims[:200]
