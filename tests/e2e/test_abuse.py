"""The service under abuse, over real HTTP: every refusal is a problem with a stable code, never a 5xx, and the
log does not change. Integer parameters (Unicode digits, numbers beyond SQLite's range)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.problems import problem_code
from tests.server import ServerUrl, running_server

NOT_INTEGERS = ["²", "١٢", "٣", "𝟗", "9999999999999999999", "1" * 25, "1" * 5000, "-1", "", "+1", " 1", "1.0", "0x1",
                "1_000", "1e3"]
INTEGER_PARAMETERS = [
    ("/entries", "start", {"limit": "1"}),
    ("/entries", "limit", {}),
    ("/checkpoint", "after", {"wait": "0"}),
    ("/checkpoint", "wait", {"after": "0"}),
    ("/proofs/consistency", "old", {"new": "1"}),
    ("/proofs/consistency", "new", {"old": "1"}),
    ("/v1/claims/approved", "after", {}),
    ("/v1/claims/approved", "limit", {}),
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerUrl]:
    with running_server(tmp_path_factory.mktemp("abuse")) as running:
        yield running


@pytest.fixture(scope="module")
def http(url: ServerUrl) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _size(http: httpx.Client) -> int:
    return int(http.get("/checkpoint").text.split("\n")[1])


@pytest.mark.parametrize(("path", "name", "others"), INTEGER_PARAMETERS)
def test_integer_parameters_take_ascii_digits_in_range_only(http: httpx.Client, path: str, name: str,
                                                            others: dict[str, str]) -> None:
    before = _size(http)
    for value in NOT_INTEGERS:
        answer = http.get(path, params={**others, name: value})
        assert answer.status_code == 400, (value, answer.status_code, answer.text[:300])
        assert problem_code(answer) == "invalid-parameter", value
    assert _size(http) == before


def test_integers_at_the_edges_of_the_range(http: httpx.Client) -> None:
    """The largest 64-bit index is a valid parameter (an empty page), one above it is refused, not a 500."""
    assert http.get("/entries", params={"start": str(2**63 - 1)}).status_code == 200
    assert http.get("/entries", params={"start": "00000000000000000001"}).status_code == 400  # 20 digits
    assert http.get("/entries", params={"start": "0000000000000000001"}).status_code == 200
    assert http.get("/v1/claims/approved", params={"after": str(2**63 - 1)}).status_code == 200
    answer = http.get("/v1/claims/approved", params={"limit": "1001"})
    assert answer.status_code == 400 and problem_code(answer) == "invalid-parameter"


@pytest.mark.parametrize("path", ["/entries/{}", "/entries/{}/statement", "/v1/claims/{}"])
def test_path_identifiers_with_unicode_digits(http: httpx.Client, path: str) -> None:
    for text in ["²" * 64, "٣" * 64, "1" * 5000]:
        answer = http.get(path.format(text))
        assert answer.status_code == 400 and problem_code(answer) == "invalid-parameter", text
