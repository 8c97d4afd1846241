"""Revocation status lists derived from the log (W3C Bitstring Status List v1.0).

One list per operator, published at ``GET /v1/status-lists/{operator DID}``: bit ``i`` is set when the
operator's passport with ``statusListIndex`` ``i`` is revoked by anything the fold knows — the passport
entry, the agent, the operator, or (for a compromise) the operator key that signed it. An operator
names this URL as its passports' ``statusListCredential``. The list is a ``BitstringStatusListCredential``
issued by the service's ``did:web`` and secured with an eddsa-jcs-2022 proof by the registry's current
key (``#<kid>`` in the service's DID document); it is re-derived on every request, so a revocation shows
as soon as the issuer has folded its entry.
"""

from __future__ import annotations

from typing import Any

from issuer.dids import did_web
from issuer.registry_keys import RegistryKey
from schemas.errors import PassportRefused
from schemas.status_list import MIN_LENGTH, encode_status_list, status_list_credential
from verifier.data_integrity import create_proof
from verifier.fold import IdentityState
from verifier.passports import check_standing, format_timestamp


def revoked_indices(state: IdentityState, operator: str) -> list[int]:
    revoked = []
    for passport in state.passport_entries.values():
        if passport.operator != operator:
            continue
        try:
            check_standing(state, passport)
        except PassportRefused:
            revoked.append(passport.status_index)
    return revoked


def status_list_url(base_url: str, operator: str) -> str:
    return f"{base_url.rstrip('/')}/v1/status-lists/{operator}"


def operator_status_list(state: IdentityState, operator: str, base_url: str, key: RegistryKey,
                         now: int) -> dict[str, Any]:
    indices = revoked_indices(state, operator)
    length = max(MIN_LENGTH, -(-(max(indices, default=0) + 1) // MIN_LENGTH) * MIN_LENGTH)
    service = did_web(base_url)
    credential = status_list_credential(
        service, status_list_url(base_url, operator), "revocation", encode_status_list(indices, length),
        format_timestamp(now),
    )
    return create_proof(credential, key.private, f"{service}#{key.kid}", format_timestamp(now))
