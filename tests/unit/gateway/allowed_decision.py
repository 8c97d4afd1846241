"""An allowed gateway decision, as the action-record tests record it: an agent of an operator reading inbox/1."""

from __future__ import annotations

from gateway.decisions import Decision

AGENT = "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"
OPERATOR = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
ALLOWED = Decision(
    at=1_760_000_000, connection="mail-api", service="mail", method="GET", action="read", resource="inbox/1",
    outcome="allow", status=200, code="ok", reason_code="ok", request_digest="sha-256:" + "ab" * 32, agent=AGENT,
    keyid=AGENT, passport="01" * 32, chain=("02" * 32, "03" * 32), root_principal=OPERATOR, claim="04" * 32,
    log_size=9,
)
