"""Offline WebAuthn assertion verification (verifier.webauthn, W3C WebAuthn Level 3 §7.2).

- Known answers: assertions made by real authenticators in browsers (ES256, EdDSA, RS256), as published in the
  test suite of py_webauthn (duo-labs/py_webauthn, tests/test_verify_authentication_response.py), positive and
  negative.
- Cross tests: assertions by the software authenticator of ``tests.webauthn_authenticator`` verify with this
  verifier and with py_webauthn alike, and every broken one is refused by both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cbor2
import pytest
import webauthn
from cryptography.hazmat.primitives.asymmetric import rsa
from webauthn.helpers.exceptions import InvalidAuthenticationResponse

from schemas.base64url import b64url
from schemas.errors import (
    AssertionChallengeMismatch,
    AssertionInvalid,
    AssertionKeyUnsupported,
    AssertionMalformed,
    AssertionOriginMismatch,
    AssertionRpIdMismatch,
    AssertionSignatureInvalid,
    AssertionSignCountNotIncreasing,
    AssertionTypeMismatch,
    AssertionUserNotPresent,
    AssertionUserNotVerified,
)
from tests.webauthn_authenticator import ORIGIN, RP_ID, SoftwareAuthenticator, authentication_response
from transparency.problem_details import problem_status
from verifier.webauthn import (
    ALG_EDDSA,
    ALG_ES256,
    ALG_RS256,
    FLAG_AT,
    FLAG_BS,
    FLAG_UP,
    FLAG_UV,
    Assertion,
    AuthenticatorData,
    Registration,
    b64url_decode,
    check_rp_origin,
    credential_key,
    verify_assertion,
    verify_registration,
)

CHALLENGE = hashlib.sha256(b"the decision").digest()

# --- known answers: real authenticators (py_webauthn's test suite); rp_id localhost, origin http://localhost:5000 --

KNOWN: dict[str, dict[str, Any]] = {
    "es256-up-only": {
        "credential_id": "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
        "authenticator_data": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAATg",
        "client_data_json": (
            "eyJjaGFsbGVuZ2UiOiJ4aTMwR1BHQUZZUnhWRHBZMXNNMTBEYUx6VlFHNjZudi1fN1JVYXpIMHZJMll2RzhMWWdE"
            "RW52TjVmWlpOVnV2RUR1TWk5dGUzVkxxYjQyTjBma0xHQSIsImNsaWVudEV4dGVuc2lvbnMiOnt9LCJoYXNoQWxn"
            "b3JpdGhtIjoiU0hBLTI1NiIsIm9yaWdpbiI6Imh0dHA6Ly9sb2NhbGhvc3Q6NTAwMCIsInR5cGUiOiJ3ZWJhdXRo"
            "bi5nZXQifQ"
        ),
        "signature": (
            "MEUCIGisVZOBapCWbnJJvjelIzwpixxIwkjCCb5aCHafQu68AiEA88v-2pJNNApPFwAKFiNuf82-2hBxYW5kGwVw"
            "eeoxCwo"
        ),
        "challenge": "xi30GPGAFYRxVDpY1sM10DaLzVQG66nv-_7RUazH0vI2YvG8LYgDEnvN5fZZNVuvEDuMi9te3VLqb42N0fkLGA",
        "public_key": (
            "pQECAyYgASFYIIeDTe-gN8A-zQclHoRnGFWN8ehM1b7yAsa8I8KIvmplIlgg4nFGT5px8o6gpPZZhO01wdy9crDS"
            "A_Ngtkx0vGpvPHI"
        ),
        "sign_count": 78,
    },
    "eddsa-up-only": {
        "credential_id": (
            "fq9Nj0nS24B5y6Pkw_h3-9GEAEA3-0LBPxE2zvTdLjDqtSeCSNYFe9VMRueSpAZxT3YDc6L1lWXdQNwI-sVNYref"
            "EcRR1Nsb_0jpHE955WEtFud2xxZg3MvoLMxHLet63i5tajd1fHtP7I-00D6cehM8ZWlLp2T3s9lfZgVIFcA"
        ),
        "authenticator_data": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAABw",
        "client_data_json": (
            "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiZVo0ZWVBM080ank1Rkl6cURhU0o2SkROR3UwYkJj"
            "NXpJMURqUV9rTHNvMVdOcWtHNms1bUNZZjFkdFFoVlVpQldaV2xaa3pSNU1GZWVXQ3BKUlVOWHciLCJvcmlnaW4i"
            "OiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9"
        ),
        "signature": "RRWV8mYDRvK7YdQgdtZD4pJ2dh1D_IWZ_D6jsZo6FHJBoenbj0CVT5nA20vUzlRhN4R6dOEUHmUwP1F8eRBhBg",
        "challenge": "eZ4eeA3O4jy5FIzqDaSJ6JDNGu0bBc5zI1DjQ_kLso1WNqkG6k5mCYf1dtQhVUiBWZWlZkzR5MFeeWCpJRUNXw",
        "public_key": "pAEBAycgBiFYIMz6_SUFLiDid2Yhlq0YboyJ-CDrIrNpkPUGmJp4D3Dp",
        "sign_count": 7,
    },
    "rs256-uv": {
        "credential_id": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
        "authenticator_data": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
        "client_data_json": (
            "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiaVBtQWkxUHAxWEw2b0FncTNQV1p0WlBuWmExekZV"
            "RG9HYmFRMF9LdlZHMWxGMnMzUnRfM280dVN6Y2N5MHRtY1RJcFRUVDRCVTFULUk0bWFhdm5kalEiLCJvcmlnaW4i"
            "OiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9"
        ),
        "signature": (
            "iOHKX3erU5_OYP_r_9HLZ-CexCE4bQRrxM8WmuoKTDdhAnZSeTP0sjECjvjfeS8MJzN1ArmvV0H0C3yy_FdRFfcp"
            "UPZzdZ7bBcmPh1XPdxRwY747OrIzcTLTFQUPdn1U-izCZtP_78VGw9pCpdMsv4CUzZdJbEcRtQuRS03qUjqDaovo"
            "JhOqEBmxJn9Wu8tBi_Qx7A33RbYjlfyLm_EDqimzDZhyietyop6XUcpKarKqVH0M6mMrM5zTjp8xf3W7odFCadXE"
            "Jg-ERZqFM0-9Uup6kJNLbr6C5J4NDYmSm3HCSA6lp2iEiMPKU8Ii7QZ61kybXLxsX4w4Dm3fOLjmDw"
        ),
        "user_handle": "T1RWa1l6VXdPRFV0WW1NNVlTMDBOVEkxTFRnd056Z3RabVZpWVdZNFpEVm1ZMk5p",
        "challenge": "iPmAi1Pp1XL6oAgq3PWZtZPnZa1zFUDoGbaQ0_KvVG1lF2s3Rt_3o4uSzccy0tmcTIpTTT4BU1T-I4maavndjQ",
        "public_key": (
            "pAEDAzkBACBZAQDfV20epzvQP-HtcdDpX-cGzdOxy73WQEvsU7Dnr9UWJophEfpngouvgnRLXaEUn_d8HGkp_HIx"
            "8rrpkx4BVs6X_B6ZjhLlezjIdJbLbVeb92BaEsmNn1HW2N9Xj2QM8cH-yx28_vCjf82ahQ9gyAr552Bn96G22n8j"
            "qFRQKdVpO-f-bvpvaP3IQ9F5LCX7CUaxptgbog1SFO6FI6ob5SlVVB00lVXsaYg8cIDZxCkkENkGiFPgwEaZ7995"
            "SCbiyCpUJbMqToLMgojPkAhWeyktu7TlK6UBWdJMHc3FPAIs0lH_2_2hKS-mGI1uZAFVAfW1X-mzKL0czUm2P1Ul"
            "Uox7IUMBAAE"
        ),
        "sign_count": 1,
    },
}
KNOWN_RP = {"rp_id": "localhost", "origin": "http://localhost:5000"}


def _known(name: str, **changes: Any) -> Any:
    v = KNOWN[name]
    kwargs = {"credential_public_key": b64url_decode(v["public_key"], "key"),
              "challenge": b64url_decode(v["challenge"], "challenge"), **KNOWN_RP, **changes}
    return verify_assertion(Assertion.from_json(v), **kwargs)


@pytest.mark.parametrize(("name", "uv"), [("es256-up-only", False), ("eddsa-up-only", False), ("rs256-uv", True)])
def test_known_answers_from_real_authenticators(name: str, uv: bool) -> None:
    verified = _known(name, require_user_verification=uv)
    assert verified.credential_id == b64url_decode(KNOWN[name]["credential_id"], "id")
    assert verified.sign_count == KNOWN[name]["sign_count"] and verified.user_verified is uv


@pytest.mark.parametrize("name", ["es256-up-only", "eddsa-up-only"])
def test_known_answers_without_uv_are_refused_when_uv_is_required(name: str) -> None:
    with pytest.raises(AssertionUserNotVerified):
        _known(name)


def test_known_answer_under_another_key_is_refused() -> None:
    """A real ES256 assertion checked against another credential's (RSA) key."""
    with pytest.raises(AssertionSignatureInvalid):
        _known("es256-up-only", require_user_verification=False,
               credential_public_key=b64url_decode(KNOWN["rs256-uv"]["public_key"], "key"))


@pytest.mark.parametrize("change", ["challenge", "origin", "rp_id"])
def test_known_answer_bound_to_challenge_origin_and_rp(change: str) -> None:
    errors = {"challenge": AssertionChallengeMismatch, "origin": AssertionOriginMismatch,
              "rp_id": AssertionRpIdMismatch}
    value: Any = {"challenge": b"\x00" * 32, "origin": "http://localhost:5001", "rp_id": "example.com"}[change]
    with pytest.raises(errors[change]):
        _known("rs256-uv", **{change: value})


# --- cross tests: the software authenticator, this verifier and py_webauthn -------------------------------------


def _ours(key: SoftwareAuthenticator, assertion: Assertion, *, uv: bool = True, stored: int = 0) -> Any:
    return verify_assertion(assertion, credential_public_key=key.cose_public_key(), challenge=CHALLENGE, rp_id=RP_ID,
                            origin=ORIGIN, require_user_verification=uv, stored_sign_count=stored)


def _theirs(key: SoftwareAuthenticator, assertion: Assertion, *, uv: bool = True, stored: int = 0) -> Any:
    return webauthn.verify_authentication_response(
        credential=authentication_response(assertion), expected_challenge=CHALLENGE, expected_rp_id=RP_ID,
        expected_origin=ORIGIN, credential_public_key=key.cose_public_key(), credential_current_sign_count=stored,
        require_user_verification=uv)


ALGS = [ALG_ES256, ALG_EDDSA, ALG_RS256]


@pytest.fixture(scope="module", params=ALGS, ids=["ES256", "EdDSA", "RS256"])
def key(request: pytest.FixtureRequest) -> SoftwareAuthenticator:
    alg: int = request.param
    return SoftwareAuthenticator(alg)


def test_software_assertions_verify_with_both(key: SoftwareAuthenticator) -> None:
    assertion = key.get(CHALLENGE)
    ours, theirs = _ours(key, assertion), _theirs(key, assertion)
    assert ours.credential_id == theirs.credential_id == key.credential_id
    assert ours.sign_count == theirs.new_sign_count == key.sign_count
    assert ours.user_verified and theirs.user_verified
    assert Assertion.from_json(assertion.to_json()) == assertion


@pytest.mark.parametrize(("stored", "sent", "ok"), [
    (0, 0, True), (0, 7, True), (6, 7, True), (7, 7, False), (8, 7, False), (7, 0, False)])
def test_the_signature_counter_must_grow(stored: int, sent: int, ok: bool) -> None:
    """WebAuthn §7.2 step 22, as py_webauthn also applies it: above the stored counter when either is nonzero."""
    key = SoftwareAuthenticator(ALG_EDDSA, counter=False, sign_count=sent)
    assertion = key.get(CHALLENGE)
    if ok:
        assert _ours(key, assertion, stored=stored).sign_count == _theirs(key, assertion, stored=stored).new_sign_count
        return
    with pytest.raises(AssertionSignCountNotIncreasing, match=f"counter is {sent}, not above {stored}"):
        _ours(key, assertion, stored=stored)
    with pytest.raises(InvalidAuthenticationResponse):
        _theirs(key, assertion, stored=stored)


def test_user_presence_only_verifies_when_uv_is_not_required(key: SoftwareAuthenticator) -> None:
    assertion = key.get(CHALLENGE, flags=FLAG_UP)
    assert not _ours(key, assertion, uv=False).user_verified
    assert not _theirs(key, assertion, uv=False).user_verified


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes((data[-1] ^ 1,))


Broken = Callable[[SoftwareAuthenticator], Assertion]
BROKEN: dict[str, tuple[Broken, type[AssertionInvalid]]] = {
    "another challenge (the decision changed)": (lambda k: k.get(hashlib.sha256(b"other").digest()),
                                                 AssertionChallengeMismatch),
    "webauthn.create": (lambda k: k.get(CHALLENGE, kind="webauthn.create"), AssertionTypeMismatch),
    "another origin": (lambda k: k.get(CHALLENGE, origin="https://evil.example"), AssertionOriginMismatch),
    "another rp id": (lambda k: k.get(CHALLENGE, rp_id="evil.example"), AssertionRpIdMismatch),
    "no UP": (lambda k: k.get(CHALLENGE, flags=FLAG_UV), AssertionUserNotPresent),
    "no UV": (lambda k: k.get(CHALLENGE, flags=FLAG_UP), AssertionUserNotVerified),
    "bad signature": (lambda k: replace(k.get(CHALLENGE), signature=_flip_last(k.get(CHALLENGE).signature)),
                      AssertionSignatureInvalid),
    "authenticator data changed": (lambda k: replace(a := k.get(CHALLENGE), authenticator_data=a.authenticator_data[:-1]
                                                     + b"\xff"), AssertionSignatureInvalid),
    "client data changed": (lambda k: replace(a := k.get(CHALLENGE), client_data_json=a.client_data_json[:-1]
                                              + b',"x":1}'), AssertionSignatureInvalid),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_assertions_are_refused_by_both(key: SoftwareAuthenticator, case: str) -> None:
    make, error = BROKEN[case]
    assertion = make(key)
    with pytest.raises(error) as refused:
        _ours(key, assertion)
    assert problem_status(refused.value) == 403 and refused.value.code.startswith("webauthn-")
    with pytest.raises(InvalidAuthenticationResponse):
        _theirs(key, assertion)


def test_a_cross_origin_assertion_is_refused(key: SoftwareAuthenticator) -> None:
    with pytest.raises(AssertionOriginMismatch, match="cross-origin"):
        _ours(key, key.get(CHALLENGE, crossOrigin=True, topOrigin="https://framer.example"))


@pytest.mark.parametrize(
    ("client_data", "reason"),
    [(b"not json", "not base64url JSON"), (b"[1]", "not a JSON object"), (b"\xff\xfe", "not base64url JSON")],
)
def test_client_data_must_be_a_json_object(client_data: bytes, reason: str) -> None:
    key = SoftwareAuthenticator()
    with pytest.raises(AssertionMalformed, match=reason):
        _ours(key, replace(key.get(CHALLENGE), client_data_json=client_data))


def test_authenticator_data_must_be_whole_and_consistent() -> None:
    with pytest.raises(AssertionMalformed, match="at least 37"):
        AuthenticatorData.parse(b"\x00" * 36)
    with pytest.raises(AssertionMalformed, match="BS"):
        AuthenticatorData.parse(b"\x00" * 32 + bytes((FLAG_UP | FLAG_BS,)) + b"\x00" * 4)
    key = SoftwareAuthenticator()
    with pytest.raises(AssertionMalformed):
        _ours(key, replace(key.get(CHALLENGE), authenticator_data=b"\x00" * 20))


@pytest.mark.parametrize("text", ["A", "AB==", "AB+/", "AB CD", "é"])
def test_base64url_is_strict(text: str) -> None:
    with pytest.raises(AssertionMalformed, match="unpadded base64url"):
        b64url_decode(text, "x")
    with pytest.raises(AssertionMalformed):
        Assertion.from_json({**SoftwareAuthenticator().get(CHALLENGE).to_json(), "signature": text})


# --- credential public keys ------------------------------------------------------------------------------------


def _cose(**changes: Any) -> bytes:
    key: dict[int, Any] = cbor2.loads(SoftwareAuthenticator(ALG_ES256).cose_public_key())
    for label, value in changes.items():
        number = int(label.replace("m", "-").removeprefix("k"))
        if value is None:
            key.pop(number, None)
        else:
            key[number] = value
    return bytes(cbor2.dumps(key))


@pytest.mark.parametrize(
    ("cose_key", "reason"),
    [
        (_cose(k3=None), "alg"),  # WebAuthn credential keys name their alg
        (_cose(k3=-35), "alg"),  # ES384: not accepted
        (_cose(k3=-8), "does not fit"),  # EdDSA on an EC2 key
        (_cose(km1=2), "P-256"),  # P-384 curve
        (_cose(km4=b"\x01" * 32), "private"),
        (b"\xa1\x01", "CBOR"),
        (bytes(cbor2.dumps([1, 2])), "map"),
        (bytes(cbor2.dumps({1: 3, 3: -257, -1: b"\xff" * 128, -2: b"\x01\x00\x01"})), "1024 bits"),
        (bytes(cbor2.dumps({1: 2, 3: -257, -1: b"\x01", -2: b"\x03"})), "kty RSA"),
    ],
)
def test_unusable_credential_keys_are_refused(cose_key: bytes, reason: str) -> None:
    with pytest.raises(AssertionKeyUnsupported, match=reason):
        credential_key(cose_key)


def test_credential_keys_of_each_algorithm() -> None:
    for alg in ALGS:
        key = SoftwareAuthenticator(alg)
        assert credential_key(key.cose_public_key()).alg == alg
    rsa_key = SoftwareAuthenticator(ALG_RS256).private_key
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert isinstance(credential_key(SoftwareAuthenticator(ALG_RS256, key=rsa_key).cose_public_key()).key,
                      rsa.RSAPublicKey)


# --- RP ID and origin of an enrolment ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rp_id", "origin"),
    [("issuer.example", "https://issuer.example"), ("issuer.example", "https://app.issuer.example:8443"),
     ("localhost", "http://localhost:5000")],
)
def test_origins_that_fit_their_rp_id(rp_id: str, origin: str) -> None:
    check_rp_origin(rp_id, origin)


@pytest.mark.parametrize(
    "origin",
    ["http://issuer.example", "https://evil.example", "https://notissuer.example", "https://issuer.example/path",
     "https://user@issuer.example", "https://issuer.example:99999", "issuer.example", "https://"],
)
def test_origins_that_do_not_fit(origin: str) -> None:
    with pytest.raises(AssertionOriginMismatch):
        check_rp_origin("issuer.example", origin)


# --- registration (navigator.credentials.create), as an approver-enrolment carries it (§7.1) ----------------------


def _attested(key: SoftwareAuthenticator, credential_id: bytes | None = None, public_key: bytes | None = None) -> bytes:
    """Attested credential data: AAGUID, credential id length and id, COSE key."""
    cid = key.credential_id if credential_id is None else credential_id
    return bytes(16) + len(cid).to_bytes(2, "big") + cid + (key.cose_public_key() if public_key is None else public_key)


def _registration(key: SoftwareAuthenticator, *, flags: int = FLAG_UP | FLAG_UV | FLAG_AT, rp_id: str | None = None,
                  attested: bytes | None = None, kind: str = "webauthn.create", origin: str = ORIGIN,
                  attestation: object = None) -> Registration:
    """A registration by ``key`` over ``CHALLENGE``, each keyword making it wrong in one way."""
    auth = key.authenticator_data(flags, rp_id, _attested(key) if attested is None else attested)
    obj = {"fmt": "none", "attStmt": {}, "authData": auth} if attestation is None else attestation
    return Registration(key.client_data(kind, b64url(CHALLENGE), origin), bytes(cbor2.dumps(obj)))


def test_software_registrations_verify_with_both(key: SoftwareAuthenticator) -> None:
    response = key.create(CHALLENGE)
    registration = Registration(b64url_decode(response["response"]["clientDataJSON"], "c"),
                                b64url_decode(response["response"]["attestationObject"], "a"))
    assert Registration.from_json(registration.to_json()) == registration
    ours = verify_registration(registration, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)
    theirs = webauthn.verify_registration_response(credential=response, expected_challenge=CHALLENGE,
                                                   expected_rp_id=RP_ID, expected_origin=ORIGIN,
                                                   require_user_verification=True)
    assert ours.credential_id == theirs.credential_id == key.credential_id
    assert ours.public_key == theirs.credential_public_key == key.cose_public_key()
    assert ours.attestation_format == "none" and ours.sign_count == theirs.sign_count == key.sign_count
    again = verify_registration(_registration(key), challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)
    assert (again.credential_id, again.public_key, again.sign_count) == (ours.credential_id, ours.public_key,
                                                                         ours.sign_count + 1)


def test_a_registration_with_extensions_after_the_key_yields_the_key_alone() -> None:
    key = SoftwareAuthenticator(ALG_EDDSA)
    extensions = bytes(cbor2.dumps({"credProtect": 2}))
    registration = _registration(key, flags=FLAG_UP | FLAG_UV | FLAG_AT | 0x80, attested=_attested(key) + extensions)
    assert verify_registration(registration, challenge=CHALLENGE, rp_id=RP_ID,
                               origin=ORIGIN).public_key == key.cose_public_key()


def test_user_verification_may_be_waived_for_a_registration() -> None:
    key = SoftwareAuthenticator()
    registration = _registration(key, flags=FLAG_UP | FLAG_AT)
    with pytest.raises(AssertionUserNotVerified):
        verify_registration(registration, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)
    verify_registration(registration, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN, require_user_verification=False)


_KEY = SoftwareAuthenticator()


@pytest.mark.parametrize(
    ("registration", "error"),
    [
        (_registration(_KEY, kind="webauthn.get"), AssertionTypeMismatch),
        (_registration(_KEY, origin="https://evil.example"), AssertionOriginMismatch),
        (_registration(_KEY, rp_id="evil.example"), AssertionRpIdMismatch),
        (_registration(_KEY, flags=FLAG_UV | FLAG_AT), AssertionUserNotPresent),
        (_registration(_KEY, flags=FLAG_UP | FLAG_AT), AssertionUserNotVerified),
        (_registration(_KEY, flags=FLAG_UP | FLAG_UV), AssertionMalformed),  # no AT: no credential attested
        (_registration(_KEY, attested=bytes(17)), AssertionMalformed),  # truncated before the id's length
        (_registration(_KEY, attested=_attested(_KEY, credential_id=b"\x01" * 8)), AssertionMalformed),  # id too short
        (_registration(_KEY, attested=_attested(_KEY)[:-3]), AssertionMalformed),  # the key cut short
        (_registration(_KEY, attested=_attested(_KEY, public_key=bytes(cbor2.dumps({1: 1})))), AssertionKeyUnsupported),
        (_registration(_KEY, attestation=[1, 2]), AssertionMalformed),
        (_registration(_KEY, attestation={"fmt": "none", "attStmt": {}}), AssertionMalformed),
        (Registration(SoftwareAuthenticator.client_data("webauthn.create", b64url(CHALLENGE), ORIGIN), b"\xff"),
         AssertionMalformed),
    ],
    ids=["type", "origin", "rp-id", "no-up", "no-uv", "no-at", "truncated", "short-id", "short-key", "key-alg",
         "not-a-map", "no-auth-data", "not-cbor"],
)
def test_a_registration_that_does_not_hold_is_refused(registration: Registration,
                                                      error: type[AssertionInvalid]) -> None:
    with pytest.raises(error):
        verify_registration(registration, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)


def test_a_registration_over_another_challenge_is_refused() -> None:
    with pytest.raises(AssertionChallengeMismatch):
        verify_registration(_registration(_KEY), challenge=b"\x00" * 32, rp_id=RP_ID, origin=ORIGIN)
