"""The gateway's signature policy: what an agent request must carry and cover, and every refusal."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.signatures import (
    AGENT_IDENTITY_HEADERS,
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_SKEW,
    Request,
    required_for,
    sign_request,
    signature_base,
)
from gateway.structured_fields import InnerList, Item, parse_dictionary, serialize_dictionary
from schemas.errors import (
    BadInput,
    ComponentMissing,
    ComponentNotCovered,
    ContentDigestMismatch,
    ContentDigestMissing,
    InvalidParameter,
    RequestSignatureInvalid,
    SignatureAlgorithmMismatch,
    SignatureCreatedInFuture,
    SignatureExpired,
    SignatureInputInvalid,
    SignatureKeyUnknown,
    SignatureLabelMissing,
    SignatureMissing,
    SignatureParameterMissing,
    SignatureTagMismatch,
    SignatureTooOld,
    StructuredFieldMalformed,
    TabellionError,
)
from tests.unit.gateway.agent import BODY, KEY, KEYID, NOW, OTHER_KEY, agent_request, keys, signed, verify
from transparency.problem_details import problem_status


def test_signed_agent_request_verifies() -> None:
    verified = verify(signed(expires=NOW + 60, tag="tabellion"))
    assert verified.label == "sig1"
    assert verified.keyid == KEYID
    assert verified.covered_components == ("@method", "@target-uri", *AGENT_IDENTITY_HEADERS, "content-digest")
    assert (verified.created, verified.expires, verified.nonce, verified.tag) == (NOW, NOW + 60, "nonce-1", "tabellion")
    assert verified.valid_until == NOW + 60 + DEFAULT_MAX_SKEW
    assert not verified.method_lowercased
    assert dict(verified.params)["alg"] == "ed25519"


def test_signing_adds_a_content_digest_and_covers_it() -> None:
    request = signed()
    assert request.field("content-digest") is not None
    assert "content-digest" in (request.field("signature-input") or "")
    get = signed(agent_request(body=b"", method="GET"))
    assert get.field("content-digest") is None
    assert verify(get).covered_components == ("@method", "@target-uri", *AGENT_IDENTITY_HEADERS)


def test_required_components_policy() -> None:
    assert required_for(agent_request()) == ("@method", "@target-uri", *AGENT_IDENTITY_HEADERS, "content-digest")
    assert required_for(agent_request(body=b"")) == ("@method", "@target-uri", *AGENT_IDENTITY_HEADERS)


# --- absent and malformed fields ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["Signature", "Signature-Input"])
def test_missing_signature_fields(field: str) -> None:
    with pytest.raises(SignatureMissing):
        verify(signed().with_fields(replace=(field,)))


def test_unsigned_request() -> None:
    with pytest.raises(SignatureMissing):
        verify(agent_request())
    with pytest.raises(SignatureMissing):
        verify(agent_request().with_fields(("Signature-Input", ""), ("Signature", "")))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Signature-Input", 'sig1=("@method" "@target-uri"'),
        ("Signature-Input", "sig1=(@method)"),
        ("Signature", "sig1=:not base64!:"),
        ("Signature", "sig1=:AAAA:, sig1=:AAAA:"),  # one label twice
    ],
)
def test_unparseable_fields(field: str, value: str) -> None:
    with pytest.raises(StructuredFieldMalformed, match=field.lower()):
        verify(signed().with_fields((field, value), replace=(field,)))


def _edit_input(request: Request, old: str, new: str) -> Request:
    value = request.field("signature-input") or ""
    assert old in value
    return request.with_fields(("Signature-Input", value.replace(old, new)), replace=("Signature-Input",))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('("@method"', '("@method" "@method"'),  # a component twice
        ('"@method"', '"@method";sf'),  # component parameters are not supported
        ('"@method"', '"@status"'),  # not a request component
        ('"@method"', '"@signature-params"'),
        ('"@method"', '"Content-Type"'),  # not lower case
        ('"@method"', "method"),  # a token, not a string
        ("created=", "created=1.5;x="),  # an unknown parameter
        ("created=", 'keyid="a";created="1";x='),
        (f'keyid="{KEYID}"', "keyid=:AA==:"),
        ('nonce="nonce-1"', "nonce=?1"),
    ],
)
def test_invalid_signature_input(old: str, new: str) -> None:
    with pytest.raises(SignatureInputInvalid) as raised:
        verify(_edit_input(signed(), old, new))
    assert isinstance(raised.value, BadInput) and problem_status(raised.value) == 400


def test_expires_before_created_is_invalid() -> None:
    with pytest.raises(SignatureInputInvalid, match="before created"):
        verify(signed(expires=NOW - 1))


@pytest.mark.parametrize(("field", "value"), [("Signature", 'sig1="AAAA"'), ("Signature-Input", "sig1=:AAAA:")])
def test_members_of_the_wrong_type(field: str, value: str) -> None:
    with pytest.raises(SignatureInputInvalid):
        verify(signed().with_fields((field, value), replace=(field,)))


# --- labels and tags ------------------------------------------------------------------------------


def _two_signatures() -> Request:
    return sign_request(signed(tag="a"), key=KEY, keyid=KEYID, created=NOW, nonce="nonce-2", label="sig2", tag="b")


def test_label_selection() -> None:
    request = _two_signatures()
    assert verify(request, label="sig2").nonce == "nonce-2"
    assert verify(request, tag="a").label == "sig1"
    with pytest.raises(SignatureLabelMissing, match="2 signatures"):
        verify(request)
    with pytest.raises(SignatureLabelMissing, match="sig3"):
        verify(request, label="sig3")
    with pytest.raises(SignatureTagMismatch):
        verify(request, label="sig1", tag="b")
    with pytest.raises(SignatureTagMismatch):
        verify(request, tag="c")


def test_label_missing_from_signature_field() -> None:
    request = _two_signatures()
    only_sig1 = serialize_dictionary({"sig1": parse_dictionary(request.field("signature") or "")["sig1"]})
    with pytest.raises(SignatureLabelMissing):
        verify(request.with_fields(("Signature", only_sig1), replace=("Signature",)), label="sig2")


def test_signing_refuses_a_label_in_use() -> None:
    with pytest.raises(InvalidParameter):
        signed(signed())


# --- coverage -------------------------------------------------------------------------------------


@pytest.mark.parametrize("left_out", ["@method", "@target-uri", "content-digest", *AGENT_IDENTITY_HEADERS])
def test_required_component_not_covered(left_out: str) -> None:
    components = [c for c in required_for(agent_request()) if c != left_out]
    with pytest.raises(ComponentNotCovered, match=left_out):
        verify(signed(components=components))


def test_content_digest_coverage_needed_only_with_content() -> None:
    request = signed(components=("@method", "@target-uri", *AGENT_IDENTITY_HEADERS))
    with pytest.raises(ComponentNotCovered, match="content-digest"):
        verify(request)
    assert verify(dataclasses.replace(request, body=b""))


def test_removed_covered_header() -> None:
    with pytest.raises(ComponentMissing, match="tabellion-subject"):
        verify(signed().with_fields(replace=("Tabellion-Subject",)))


def test_changed_covered_header() -> None:
    request = signed().with_fields(("Tabellion-Subject", "did:key:z6MkOther"), replace=("Tabellion-Subject",))
    with pytest.raises(RequestSignatureInvalid):
        verify(request)


def test_added_line_of_covered_header_changes_its_value() -> None:
    with pytest.raises(RequestSignatureInvalid):
        verify(signed().with_fields(("Tabellion-Namespace", "evil")))


@pytest.mark.parametrize(
    "uri",
    [
        "https://api.example.com/v1/accounts/43?fields=name&x=1",
        "https://api.example.com/v1/accounts/42?fields=name&x=2",
    ],
)
def test_changed_target(uri: str) -> None:
    with pytest.raises(RequestSignatureInvalid):
        verify(dataclasses.replace(signed(), target_uri=uri))


def test_uncovered_header_may_change() -> None:
    verify(signed().with_fields(("Content-Type", "text/plain"), replace=("Content-Type",)))


# --- content --------------------------------------------------------------------------------------


def test_tampered_body_is_a_digest_mismatch() -> None:
    with pytest.raises(ContentDigestMismatch):
        verify(dataclasses.replace(signed(), body=BODY.replace(b"42", b"43")))


def test_body_added_to_a_signed_get() -> None:
    request = dataclasses.replace(signed(agent_request(body=b"", method="GET")), body=b"smuggled")
    with pytest.raises(ComponentNotCovered, match="content-digest"):
        verify(request)


def test_covered_digest_removed() -> None:
    with pytest.raises(ComponentMissing, match="content-digest"):
        verify(signed().with_fields(replace=("Content-Digest",)))


def test_digest_covered_but_body_dropped() -> None:
    with pytest.raises(ContentDigestMismatch):
        verify(dataclasses.replace(signed(), body=b""))


def test_covered_empty_digest_field_with_content() -> None:
    request = signed(agent_request().with_fields(("Content-Digest", "")))
    with pytest.raises(ContentDigestMissing):
        verify(request)


# --- keys and algorithms --------------------------------------------------------------------------


def test_wrong_key() -> None:
    with pytest.raises(RequestSignatureInvalid):
        verify(signed(key=OTHER_KEY))
    with pytest.raises(RequestSignatureInvalid):
        verify(signed(), key_resolver=keys(OTHER_KEY).get)


def test_unknown_keyid() -> None:
    with pytest.raises(SignatureKeyUnknown):
        verify(signed(keyid="did:key:z6MkStranger#z6MkStranger"))


def test_corrupted_signature() -> None:
    request = signed()
    sig = parse_dictionary(request.field("signature") or "")["sig1"]
    assert isinstance(sig, Item) and isinstance(sig.value, bytes)
    for bad in (bytes([sig.value[0] ^ 1]) + sig.value[1:], sig.value[:-1], b""):
        tampered = request.with_fields(("Signature", serialize_dictionary({"sig1": Item(bad)})), replace=("Signature",))
        with pytest.raises(RequestSignatureInvalid):
            verify(tampered)


@pytest.mark.parametrize("alg", ["hmac-sha256", "rsa-pss-sha512", "ecdsa-p256-sha256", "ED25519"])
def test_other_algorithms_are_refused(alg: str) -> None:
    with pytest.raises(SignatureAlgorithmMismatch):
        verify(_edit_input(signed(), 'alg="ed25519"', f'alg="{alg}"'))


def test_alg_may_be_omitted() -> None:
    verify(signed(include_alg=False))


# --- time -----------------------------------------------------------------------------------------


def test_created_in_the_future() -> None:
    verify(signed(created=NOW + DEFAULT_MAX_SKEW))
    with pytest.raises(SignatureCreatedInFuture):
        verify(signed(created=NOW + DEFAULT_MAX_SKEW + 1))
    with pytest.raises(SignatureCreatedInFuture):
        verify(signed(created=NOW + 1), max_skew=0)


def test_stale() -> None:
    limit = NOW - DEFAULT_MAX_AGE - DEFAULT_MAX_SKEW
    assert verify(signed(created=limit)).valid_until == NOW
    with pytest.raises(SignatureTooOld):
        verify(signed(created=limit - 1))
    with pytest.raises(SignatureTooOld):
        verify(signed(created=NOW - 11), max_age=10, max_skew=0)


def test_expired() -> None:
    verify(signed(created=NOW - 100, expires=NOW - DEFAULT_MAX_SKEW))
    with pytest.raises(SignatureExpired):
        verify(signed(created=NOW - 100, expires=NOW - DEFAULT_MAX_SKEW - 1))
    with pytest.raises(SignatureExpired):
        verify(signed(created=NOW - 10, expires=NOW - 1), max_skew=0)


@pytest.mark.parametrize(("drop", "name"), [(";created=1760000000", "created"), (';keyid="' + KEYID + '"', "keyid")])
def test_required_parameters(drop: str, name: str) -> None:
    with pytest.raises(SignatureParameterMissing, match=name):
        verify(_edit_input(signed(), drop, ""))


def test_nonce_required_unless_opted_out() -> None:
    request = signed(nonce=None)
    with pytest.raises(SignatureParameterMissing, match="nonce"):
        verify(request)
    assert verify(request, require_nonce=False).nonce is None


# --- lower-cased method compatibility (Sigilum's SDKs) --------------------------------------------


def _signed_with_lowercase_method() -> Request:
    request = signed()
    covered = parse_dictionary(request.field("signature-input") or "")["sig1"]
    assert isinstance(covered, InnerList)
    lowered = KEY.sign(signature_base(request, covered, lowercase_method=True))
    assert b'"@method": post\n' in signature_base(request, covered, lowercase_method=True)
    return request.with_fields(("Signature", serialize_dictionary({"sig1": Item(lowered)})), replace=("Signature",))


def test_lowercase_method_refused_by_default() -> None:
    with pytest.raises(RequestSignatureInvalid):
        verify(_signed_with_lowercase_method())


def test_lowercase_method_accepted_in_compat_mode() -> None:
    verified = verify(_signed_with_lowercase_method(), lowercase_method_compat=True)
    assert verified.method_lowercased
    assert not verify(signed(), lowercase_method_compat=True).method_lowercased


def test_compat_mode_still_refuses_bad_signatures() -> None:
    with pytest.raises(RequestSignatureInvalid):
        verify(signed(key=OTHER_KEY), lowercase_method_compat=True)
    tampered = dataclasses.replace(_signed_with_lowercase_method(), method="PUT")
    with pytest.raises(RequestSignatureInvalid):
        verify(tampered, lowercase_method_compat=True)


# --- fuzzing: malformed fields raise our errors, unparseable ones BadInput ------------------------

SF_CHARS = st.sampled_from(list('sig1abckx@-"() ;=:,?*0123456789./\\') + ["\t", "é"])
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIGNED = signed()


def _check_refusal_or_success(request: Request, field: str) -> None:
    try:
        verify(request)
    except TabellionError as e:
        try:
            parse_dictionary(request.field(field) or "")
        except StructuredFieldMalformed:
            assert isinstance(e, BadInput), repr(e)


@FUZZ
@given(field=st.sampled_from(["Signature-Input", "Signature"]), value=st.text(SF_CHARS, max_size=60))
def test_fuzzed_field_values(field: str, value: str) -> None:
    _check_refusal_or_success(SIGNED.with_fields((field, value), replace=(field,)), field)


@FUZZ
@given(
    field=st.sampled_from(["Signature-Input", "Signature"]),
    position=st.integers(min_value=0, max_value=10_000),
    insert=st.text(SF_CHARS, max_size=3),
    delete=st.integers(min_value=0, max_value=3),
)
def test_mutated_field_values(field: str, position: int, insert: str, delete: int) -> None:
    value = SIGNED.field(field) or ""
    at = position % (len(value) + 1)
    mutated = value[:at] + insert + value[at + delete :]
    _check_refusal_or_success(SIGNED.with_fields((field, mutated), replace=(field,)), field)


@FUZZ
@given(value=st.text(SF_CHARS, max_size=60))
def test_fuzzed_content_digest(value: str) -> None:
    request = SIGNED.with_fields(("Content-Digest", value), replace=("Content-Digest",))
    with pytest.raises(TabellionError):
        verify(request)
