"""The ``public_url`` setting: an http(s) base URL without user information, query or fragment, kept without its
trailing ``/``; the listen address when absent (an IPv6 literal in brackets); port 0 needs it."""

from __future__ import annotations

import pytest

from issuer.dids import did_web
from schemas.errors import ConfigurationError
from transparency.settings import load_settings


@pytest.mark.parametrize(
    ("overrides", "env", "service_url", "did"),
    [
        ({}, {}, "http://127.0.0.1:8000", "did:web:127.0.0.1%3A8000"),
        ({"host": "::1", "port": 9000}, {}, "http://[::1]:9000", "did:web:%5B%3A%3A1%5D%3A9000"),
        ({"public_url": "https://log.acme.example/"}, {}, "https://log.acme.example", "did:web:log.acme.example"),
        ({}, {"TABELLION_PUBLIC_URL": "https://acme.example/log"}, "https://acme.example/log",
         "did:web:acme.example:log"),
        ({"public_url": "https://log.acme.example:8443", "port": 0}, {}, "https://log.acme.example:8443",
         "did:web:log.acme.example%3A8443"),
    ],
)
def test_the_service_url(overrides: dict[str, object], env: dict[str, str], service_url: str, did: str) -> None:
    settings = load_settings(overrides, env)
    assert settings.service_url == service_url
    assert did_web(settings.service_url) == did


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("log.acme.example", "http:// or https://"),
        ("ftp://log.acme.example", "http:// or https://"),
        ("https://", "http:// or https://"),
        ("https://user@log.acme.example", "user information"),
        ("https://log.acme.example/?x=1", "no query"),
        ("https://log.acme.example/#k", "no fragment"),
        ("https://log.acme.example:http", "is not a URL"),
        ("https://log.acme.example/a b", "spaces"),
    ],
)
def test_bad_public_urls_are_refused(value: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        load_settings({"public_url": value}, {})


def test_port_zero_needs_a_public_url() -> None:
    with pytest.raises(ConfigurationError, match="public_url"):
        load_settings({"port": 0}, {})
