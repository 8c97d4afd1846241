"""The operator's web console (``tabellion console --config FILE``): its own process on the operator's host.

It holds the namespace key (which never leaves that host), reads every state from the log through the issuer's
HTTP API (``issuer.client``), and is authoritative about nothing: what it signs, the issuer and the log's fold
check again. Human approvers enrol a passkey (their consent to the enrolment, logged), sign in with it, and
approve, reject or revoke claims, each decision with a fresh assertion over that decision.
"""
