"""The outbound-target guard: public unicast addresses only, unless the operator allows a range."""

from __future__ import annotations

import ipaddress

import pytest

from schemas.errors import ConfigurationError, OutboundTargetRefused
from transparency.outbound import AllowedTargets, check_outbound_url, pinned_target
from transparency.problem_details import problem_status
from transparency.settings import load_settings

NONE = AllowedTargets()


def _resolving(*addresses: str) -> object:
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(("address", "category"), [
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"),
    ("::1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"), ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("fd12:3456::1", "unique-local"), ("fc00::1", "unique-local"), ("fec0::1", "site-local"),
    ("240.0.0.1", ""), ("255.255.255.255", ""), ("100.64.0.1", "not globally routable"),
    ("192.0.2.1", ""), ("2001:db8::1", ""), ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"), ("::ffff:10.0.0.1", "private"), ("2002:7f00:1::1", "loopback"),
    ("2002:a9fe:a9fe::", "link-local"), ("::127.0.0.1", ""),
])
def test_addresses_that_are_not_public_are_refused(address: str, category: str) -> None:
    """(Python files some ranges under several properties: "" accepts any category.)"""
    with pytest.raises(OutboundTargetRefused, match=f"a {category}.*address") as refused:
        check_outbound_url("https://hooks.example/x", allow=NONE, resolve=_resolving(address))  # type: ignore[arg-type]
    assert refused.value.code == "outbound-target-refused" and problem_status(refused.value) == 400
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(OutboundTargetRefused):
        check_outbound_url(f"http://{literal}:8080/x", allow=NONE)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8",
                                     "2002:808:808::1"])
def test_public_addresses_pass(address: str) -> None:
    found = check_outbound_url("https://hooks.example/x", allow=NONE, resolve=_resolving(address))  # type: ignore[arg-type]
    assert found == [ipaddress.ip_address(address)]


def test_every_address_of_the_name_is_checked() -> None:
    with pytest.raises(OutboundTargetRefused, match="10.0.0.1"):
        check_outbound_url("https://hooks.example/x", allow=NONE,
                           resolve=_resolving("8.8.8.8", "8.8.4.4", "10.0.0.1"))  # type: ignore[arg-type]


def test_numeric_host_forms_are_resolved_then_checked() -> None:
    for host in ("2130706433", "0x7f.1", "127.1", "0177.0.0.1", "localhost"):
        with pytest.raises(OutboundTargetRefused, match="loopback"):
            check_outbound_url(f"http://{host}/x", allow=NONE)


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/", "http:///x", "http://8.8.8.8:99999/", "file:///etc/passwd",
                                 "http://[::1/", "//8.8.8.8/", "http://" + "a" * 300 + "/", "http://does-not-resolve.invalid/"])
def test_what_is_not_an_http_url_with_a_resolvable_host_is_refused(url: str) -> None:
    with pytest.raises(OutboundTargetRefused):
        check_outbound_url(url, allow=NONE)


def test_the_operator_allows_ranges() -> None:
    allow = AllowedTargets.parse("127.0.0.0/8, 10.1.0.0/16 fd00::/8")
    assert check_outbound_url("http://127.0.0.1:9/x", allow=allow) == [ipaddress.ip_address("127.0.0.1")]
    assert check_outbound_url("http://[::ffff:127.0.0.2]/", allow=allow)  # judged as the IPv4 address
    check_outbound_url("http://h/", allow=allow, resolve=_resolving("10.1.2.3", "fd00::5"))  # type: ignore[arg-type]
    with pytest.raises(OutboundTargetRefused):
        check_outbound_url("http://h/", allow=allow, resolve=_resolving("10.2.0.1"))  # type: ignore[arg-type]
    with pytest.raises(OutboundTargetRefused):
        check_outbound_url("http://[::1]/", allow=allow)  # 127.0.0.0/8 does not cover ::1
    assert str(allow) == "127.0.0.0/8,10.1.0.0/16,fd00::/8"
    assert AllowedTargets.parse("") == AllowedTargets.parse(" , ") == NONE


def test_the_setting() -> None:
    assert load_settings(env={}).allowed_targets == NONE
    settings = load_settings(env={"TABELLION_OUTBOUND_ALLOW": "127.0.0.1"})
    assert settings.allowed_targets == AllowedTargets((ipaddress.ip_network("127.0.0.1/32"),))
    for bad in ("localhost", "10.0.0.0/33", "1.2.3.4/8x"):
        with pytest.raises(ConfigurationError):
            load_settings(env={"TABELLION_OUTBOUND_ALLOW": bad})


def test_pinned_target_keeps_the_name_for_host_and_tls() -> None:
    https = pinned_target("https://user:pw@hooks.example:8443/a?b=1", ipaddress.ip_address("2606:4700::1"))
    assert https.url == "https://user:pw@[2606:4700::1]:8443/a?b=1"
    assert https.headers == {"host": "hooks.example:8443"} and https.extensions == {"sni_hostname": "hooks.example"}
    http = pinned_target("http://hooks.example/a", ipaddress.ip_address("8.8.8.8"))
    assert (http.url, http.headers, http.extensions) == ("http://8.8.8.8:80/a", {"host": "hooks.example"}, {})
