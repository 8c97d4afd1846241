"""RFC 9421 known answers: the Appendix B.2.6 Ed25519 vector (tests/vectors/rfc9421) and the §2.1 and
§2.2 examples of field and derived component values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from gateway.signatures import Request, sign_request, signature_base, verify_request
from gateway.structured_fields import InnerList, Item, parse_dictionary
from schemas.errors import ComponentNotCovered, RequestSignatureInvalid, SignatureBaseInvalid
from tests.vectors import vectors_dir

DIR: Path = vectors_dir() / "rfc9421"
VECTOR: dict[str, Any] = json.loads((DIR / "rfc9421-B.2.6-ed25519.json").read_text())
LABEL = "sig-b26"
KEYID = "test-key-ed25519"
CREATED = 1618884473


def _private_key() -> Ed25519PrivateKey:
    key = load_pem_private_key((DIR / "test-key-ed25519.priv.pem").read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _public_key() -> Ed25519PublicKey:
    key = load_pem_public_key((DIR / "test-key-ed25519.pub.pem").read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    return key


def _vector_request() -> Request:
    r = VECTOR["request"]
    return Request(r["method"], r["url"], tuple(r["headers"].items()), r["body"].encode())


def _covered() -> InnerList:
    member = parse_dictionary(VECTOR["signature_input"])[LABEL]
    assert isinstance(member, InnerList)
    return member


def test_b26_signature_base_byte_for_byte() -> None:
    base = signature_base(_vector_request(), _covered())
    # The file holds the base as RFC text with one final newline; the base itself has none (§2.5).
    assert base + b"\n" == (DIR / "b26_signature_base.txt").read_bytes()
    assert base == VECTOR["signature_base"].encode()


def test_b26_signature_verifies_with_the_public_key() -> None:
    signature = parse_dictionary(VECTOR["signature"])[LABEL]
    assert isinstance(signature, Item) and isinstance(signature.value, bytes)
    _public_key().verify(signature.value, signature_base(_vector_request(), _covered()))


def test_b26_signing_reproduces_the_vector() -> None:
    signed = sign_request(
        _vector_request(),
        key=_private_key(),
        keyid=KEYID,
        created=CREATED,
        label=LABEL,
        components=VECTOR["covered_components"],
        include_alg=False,
    )
    assert signed.field("signature-input") == VECTOR["signature_input"]
    assert signed.field("signature") == VECTOR["signature"]


def _vector_signed() -> Request:
    return _vector_request().with_fields(
        ("Signature-Input", VECTOR["signature_input"]), ("Signature", VECTOR["signature"])
    )


def test_b26_through_verify_request() -> None:
    resolver = {KEYID: _public_key()}.get
    policy: dict[str, Any] = {"required_components": ("@method", "@authority", "@path"), "require_nonce": False}
    # B.2.6 signs the headers but not the content: with the content the gateway's policy refuses it ...
    with pytest.raises(ComponentNotCovered, match="content-digest"):
        verify_request(_vector_signed(), key_resolver=resolver, now=CREATED, **policy)
    # ... and the same request without content verifies.
    verified = verify_request(
        dataclasses.replace(_vector_signed(), body=b""), key_resolver=resolver, now=CREATED + 10, **policy
    )
    assert verified.label == LABEL
    assert verified.keyid == KEYID
    assert verified.created == CREATED
    assert verified.covered_components == tuple(VECTOR["covered_components"])


@pytest.mark.parametrize(
    "change",
    [
        {"headers": (("Date", "Tue, 20 Apr 2021 02:07:56 GMT"),)},
        {"headers": (("Content-Type", "application/xml"),)},
        {"headers": (("Content-Length", "19"),)},
        {"target_uri": "https://example.org/foo?param=Value&Pet=dog"},  # @authority
        {"target_uri": "https://example.com/bar?param=Value&Pet=dog"},  # @path
        {"method": "PUT"},
    ],
)
def test_b26_any_covered_change_is_refused(change: dict[str, Any]) -> None:
    request = dataclasses.replace(_vector_signed(), body=b"")
    for name, value in change.pop("headers", ()):
        request = request.with_fields((name, value), replace=(name,))
    request = dataclasses.replace(request, **change)
    with pytest.raises(RequestSignatureInvalid):
        verify_request(
            request, key_resolver={KEYID: _public_key()}.get, now=CREATED, required_components=(), require_nonce=False
        )


def _value(request: Request, component: str) -> str:
    base = signature_base(request, InnerList((Item(component),))).decode()
    line = base.split("\n")[0]
    prefix = f'"{component}": '
    assert line.startswith(prefix)
    return line[len(prefix) :]


def test_rfc9421_2_1_field_values() -> None:
    request = Request(
        "GET",
        "https://www.example.com/",
        (
            ("Host", "www.example.com"),
            ("Date", "Tue, 20 Apr 2021 02:07:56 GMT"),
            ("X-OWS-Header", "   Leading and trailing whitespace.   "),
            ("X-Obs-Fold-Header", "Obsolete\r\n    line folding."),
            ("Cache-Control", "max-age=60"),
            ("Cache-Control", "   must-revalidate"),
            ("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)"),
            ("X-Empty-Header", ""),
        ),
    )
    assert _value(request, "host") == "www.example.com"
    assert _value(request, "date") == "Tue, 20 Apr 2021 02:07:56 GMT"
    assert _value(request, "x-ows-header") == "Leading and trailing whitespace."
    assert _value(request, "x-obs-fold-header") == "Obsolete line folding."
    assert _value(request, "cache-control") == "max-age=60, must-revalidate"
    assert _value(request, "example-dict") == "a=1,    b=2;x=1;y=2,   c=(a   b   c)"
    assert _value(request, "x-empty-header") == ""


def test_rfc9421_2_2_derived_components() -> None:
    request = Request("POST", "https://www.example.com/path?param=value", (("Host", "www.example.com"),))
    assert _value(request, "@method") == "POST"
    assert _value(request, "@target-uri") == "https://www.example.com/path?param=value"
    assert _value(request, "@authority") == "www.example.com"
    assert _value(request, "@scheme") == "https"
    assert _value(request, "@request-target") == "/path?param=value"
    assert _value(request, "@path") == "/path"
    assert _value(request, "@query") == "?param=value"


@pytest.mark.parametrize(
    ("uri", "component", "value"),
    [
        ("https://www.example.com/path?queryString", "@query", "?queryString"),
        ("https://www.example.com/path", "@query", "?"),
        ("https://www.example.com/p?param=value&foo=bar&baz=bat%2Dman", "@query", "?param=value&foo=bar&baz=bat%2Dman"),
        ("https://www.example.com", "@path", "/"),
        ("https://www.example.com", "@target-uri", "https://www.example.com/"),
        ("https://www.example.com?a=1", "@target-uri", "https://www.example.com/?a=1"),
        ("https://www.example.com:443/x", "@authority", "www.example.com"),
        ("http://www.example.com:80/x", "@authority", "www.example.com"),
        ("HTTP://WWW.Example.com:8080/x", "@authority", "www.example.com:8080"),
        ("HTTP://WWW.Example.com:8080/x", "@scheme", "http"),
        ("https://[2001:db8::1]:443/x", "@authority", "[2001:db8::1]"),
        ("https://[2001:db8::1]:8443/x", "@authority", "[2001:db8::1]:8443"),
        ("https://a.example/p%20q/r", "@path", "/p%20q/r"),
    ],
)
def test_derived_component_normalization(uri: str, component: str, value: str) -> None:
    assert _value(Request("GET", uri), component) == value


@pytest.mark.parametrize(
    "uri",
    [
        "/relative",
        "ftp://a.example/x",
        "https://user@a.example/x",
        "https://a.example/x#frag",
        "https://a.example/é",
        "https://a.example:https/x",
    ],
)
def test_target_uri_must_be_absolute_http(uri: str) -> None:
    with pytest.raises(SignatureBaseInvalid):
        signature_base(Request("GET", uri), InnerList((Item("@authority"),)))


@pytest.mark.parametrize("value", ["caf\u00e9", "a\x00b", "a\rb", "a\nb"])
def test_unsignable_field_values(value: str) -> None:
    with pytest.raises(SignatureBaseInvalid):
        signature_base(Request("GET", "https://a.example/", (("X-Thing", value),)), InnerList((Item("x-thing"),)))
