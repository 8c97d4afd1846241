"""The transparency log over HTTP (SCRAPI and the log reads of docs/architecture.md §3), synchronous, on httpx.

Every answer that is not the expected success is raised as ``LogRequestRefused`` carrying the answer's
status and its problem details (RFC 9290 CBOR or RFC 9457 JSON); a log that cannot be reached raises
``LogUnreachable``. Bodies are returned as the log sent them: verifying them is the verifier's job. No answer is
read past ``max_answer_bytes`` (``transparency.client.bounded``: ``answer-too-large``), nor inflated, nor past
``answer_deadline_s`` after the request was sent (``answer-too-slow``; a long poll's wait is added to it).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

import httpx

from schemas import cbor, media_types
from schemas.cose_sign1 import decode_sign1
from schemas.errors import (
    PROBLEM_TYPE_BASE,
    AnswerTooLarge,
    AnswerTooSlow,
    InvalidParameter,
    LogRequestRefused,
    LogUnreachable,
    MalformedCbor,
    RegistrationPending,
    TabellionError,
)
from schemas.leaf import entry_id, leaf_data, parse_entry_id
from schemas.proofs import ConsistencyProof
from transparency.client.bounded import ANSWER_DEADLINE_S, DEADLINE_EXTENSION, MAX_ANSWER_BYTES, BoundedTransport

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WAIT_S = 30.0
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 60.0
MIN_POLL_INTERVAL_S = 0.05

# RFC 9290 standard problem detail keys
_TITLE, _DETAIL, _STATUS = -1, -2, -4
_PROBLEM_TYPE_PREFIX = "urn:"


@dataclass(frozen=True)
class Submitted:
    """A registered statement: its entry id, its location on the log, and its receipt (``None`` when the
    log was still registering it when the caller stopped waiting)."""

    entry_id: str
    location: str
    receipt: bytes | None


class LogEntry(NamedTuple):
    """One entry of a follower page: 0-based index, the logged statement, its receipt."""

    leaf_index: int
    statement: bytes
    receipt: bytes


PendingCallback = Callable[[str, float], None]
"""Called with ``(entry_id, seconds waited so far)`` each time the log says registration is still running."""


class HttpLogClient:
    """A client of one transparency log at ``base_url`` (e.g. ``http://127.0.0.1:8000``)."""

    def __init__(
        self,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        wait: float = DEFAULT_WAIT_S,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        answer_deadline_s: float = ANSWER_DEADLINE_S,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidParameter(f"log URL {base_url[:100]!r} is not an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self.wait = wait
        self._sleep = sleep
        self.answer_deadline_s = answer_deadline_s
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                  transport=BoundedTransport(transport, max_bytes=max_answer_bytes,
                                                             deadline_s=answer_deadline_s))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpLogClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- registration -----------------------------------------------------------------------------

    def submit(
        self, statement: bytes, *, wait: float | None = None, on_pending: PendingCallback | None = None
    ) -> Submitted:
        """POST the statement to ``/entries``; on 202 poll its location (honouring Retry-After) for up to
        ``wait`` seconds. A 429 is retried within the same time. Refusals raise ``LogRequestRefused``. The
        ``Location`` must name the statement's own entry id, on the log's own origin (a 502 refusal otherwise: a log
        cannot hand the client another statement's receipt, nor send its polling elsewhere)."""
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        while True:
            answer = self._request(
                "POST", "/entries", content=statement, headers={"Content-Type": media_types.COSE}
            )
            if answer.status_code == 429 and self._pause(answer, deadline):
                continue
            break
        if answer.status_code not in (201, 202):
            raise refusal(answer)
        location = answer.headers.get("location")
        if not location:
            raise LogRequestRefused(
                f"the log answered {answer.status_code} to POST /entries without a Location",
                status=answer.status_code,
            )
        entry_id = _entry_id_of(location)
        own = _own_entry_id(statement)
        if own is not None and entry_id != own:
            raise LogRequestRefused(f"the log's Location names entry {entry_id}, not the statement's own {own}",
                                    status=502)
        location = self._absolute(location)
        if not location.startswith(self.base_url + "/"):
            raise LogRequestRefused(f"the log's Location {location[:120]!r} is not on the log {self.base_url}",
                                    status=502)
        if answer.status_code == 201:
            return Submitted(entry_id, location, answer.content)
        receipt = self._poll(answer, location, entry_id, deadline, on_pending)
        return Submitted(entry_id, location, receipt)

    def receipt(self, entry_id: str) -> bytes | None:
        """The entry's receipt, or ``None`` while the log is still registering it."""
        parse_entry_id(entry_id)
        answer = self._request("GET", f"/entries/{entry_id}")
        if answer.status_code == 204:
            return None
        return self._expect(answer).content

    def transparent_statement(self, entry_id: str, *, wait: float | None = None) -> bytes:
        """The logged statement with its receipt (unprotected 394); waits up to ``wait`` seconds while the
        log is still registering it, then raises ``RegistrationPending``."""
        parse_entry_id(entry_id)
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        while True:
            answer = self._request("GET", f"/entries/{entry_id}/statement")
            if answer.status_code != 204:
                return self._expect(answer).content
            if not self._pause(answer, deadline):
                raise RegistrationPending(f"the log is still registering entry {entry_id}")

    # --- log reads --------------------------------------------------------------------------------

    def checkpoint(self, after: int | None = None, wait: float | None = None) -> str:
        """The latest signed checkpoint (a C2SP signed note), as text. With ``after`` a long poll: the log
        answers once its tree is larger than ``after``, or after ``wait`` seconds (default 10, at most 30)."""
        return self._text(self._expect(self._checkpoint_read("/checkpoint", after, wait)))

    def witnessed_checkpoint(self, after: int | None = None, wait: float | None = None) -> str | None:
        """The newest checkpoint the log's witness quorum cosigned, as text (unverified), or ``None`` when the log
        has none (404 ``checkpoint-not-witnessed``). With ``after`` a long poll, as ``checkpoint``."""
        answer = self._checkpoint_read("/checkpoint/witnessed", after, wait)
        if answer.status_code == 404 and _problem_code(answer) == "checkpoint-not-witnessed":
            return None
        return self._text(self._expect(answer))

    def vkey(self) -> str:
        """The log's signed-note verifier key ``<origin>+<key id>+<key>``."""
        return self._text(self._expect(self._request("GET", "/log/vkey"))).strip()

    def key_set(self) -> bytes:
        """The COSE Key Set of the log's receipt keys (current and retired)."""
        return self._expect(self._request("GET", "/.well-known/scitt-keys")).content

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        """The RFC 9162 consistency proof between the trees of ``old`` and ``new`` leaves."""
        answer = self._expect(self._request("GET", "/proofs/consistency", params={"old": old, "new": new}))
        proof = ConsistencyProof.decode(answer.content)
        if (proof.size1, proof.size2) != (old, new):
            raise LogRequestRefused(
                f"asked for the consistency of {old} and {new}; "
                f"the log answered {proof.size1} and {proof.size2}",
                status=answer.status_code,
            )
        return proof

    def entries(self, start: int = 0, limit: int = 100) -> list[LogEntry]:
        """Up to ``limit`` entries from index ``start``, each with its receipt (the log may cap ``limit``).

        A page larger than ``max_answer_bytes`` (large statements: anyone may log them), or not read within
        ``answer_deadline_s`` (a slow link), is asked for again at half the limit, down to one entry, so a legitimate
        log is always followed; only a single entry past the bound is refused (``answer-too-large``,
        ``answer-too-slow``)."""
        while True:
            try:
                answer = self._expect(self._request("GET", "/entries", params={"start": start, "limit": limit}))
            except (AnswerTooLarge, AnswerTooSlow):
                if limit <= 1:
                    raise
                limit //= 2
                continue
            return decode_entries_page(answer.content)

    # --- plumbing ---------------------------------------------------------------------------------

    def _checkpoint_read(self, path: str, after: int | None, wait: float | None) -> httpx.Response:
        """GET ``path``; with ``after`` a long poll, which the log may hold ``wait`` seconds (default 10) before it
        answers: the read timeout and the answer's deadline are both that much longer."""
        if after is None:
            return self._request("GET", path)
        held = int(wait if wait is not None else 10)
        timeout = (self._http.timeout.read or DEFAULT_TIMEOUT_S) + held
        return self._request("GET", path, params={"after": after, "wait": held}, timeout=timeout,
                             extensions={DEADLINE_EXTENSION: self.answer_deadline_s + held})

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise LogUnreachable(f"{method} {self.base_url}{url}: no answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise LogUnreachable(f"{method} {self.base_url}{url}: {exc}") from exc

    @staticmethod
    def _expect(answer: httpx.Response) -> httpx.Response:
        if answer.status_code != 200:
            raise refusal(answer)
        return answer

    def _absolute(self, location: str) -> str:
        """``location`` as a URL: a path is taken relative to the base URL, as requests with a path are."""
        if location.startswith(("http://", "https://")):
            return location
        return self.base_url + "/" + location.lstrip("/")

    @staticmethod
    def _text(answer: httpx.Response) -> str:
        try:
            return answer.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LogRequestRefused(
                f"{answer.request.url.path} answered text that is not UTF-8", status=answer.status_code
            ) from exc

    def _poll(
        self,
        answer: httpx.Response,
        location: str,
        entry_id: str,
        deadline: float,
        on_pending: PendingCallback | None,
    ) -> bytes | None:
        started = time.monotonic()
        while True:
            if on_pending is not None:
                on_pending(entry_id, time.monotonic() - started)
            if not self._pause(answer, deadline):
                return None
            answer = self._request("GET", location)
            if answer.status_code == 200:
                return answer.content
            if answer.status_code not in (202, 204, 429):
                raise refusal(answer)

    def _pause(self, answer: httpx.Response, deadline: float) -> bool:
        """Sleep as long as ``answer``'s Retry-After asks (capped by the deadline); ``False`` when the
        deadline has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        delay = retry_after(answer.headers.get("retry-after"))
        self._sleep(max(MIN_POLL_INTERVAL_S, min(delay, remaining)))
        return True


def decode_entries_page(content: bytes, what: str = "entries page") -> list[LogEntry]:
    """A follower page (or a statement bundle): a CBOR array of ``[index, logged statement, receipt]``."""
    items = cbor.decode(content, what)
    if not isinstance(items, list | tuple):
        raise MalformedCbor(f"the {what} is not a CBOR array")
    page: list[LogEntry] = []
    for item in items:
        if (
            not isinstance(item, list | tuple) or len(item) != 3
            or not isinstance(item[0], int) or isinstance(item[0], bool)
            or not isinstance(item[1], bytes) or not isinstance(item[2], bytes)
        ):
            raise MalformedCbor(f"an entry of the {what} is not [index, statement bstr, receipt bstr]")
        page.append(LogEntry(item[0], item[1], item[2]))
    return page


def retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), within 0..60 s."""
    if value is None:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit alone takes "²", which float() refuses
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return DEFAULT_RETRY_AFTER_S
    delay = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(delay, MAX_RETRY_AFTER_S))


def refusal(answer: httpx.Response) -> LogRequestRefused:
    """The ``LogRequestRefused`` an answer stands for: "<title>: <detail>" from its problem details, or its
    status and reason when it carries none."""
    ctype = answer.headers.get("content-type", "").split(";")[0].strip().lower()
    title: str | None = None
    detail: str | None = None
    problem_type: str | None = None
    status = answer.status_code
    if ctype == media_types.CONCISE_PROBLEM:
        title, detail, problem_type = _concise_problem(answer.content)
    elif ctype == media_types.PROBLEM_JSON:
        title, detail, problem_type = _json_problem(answer.content)
    if title is None and detail is None:
        title = f"HTTP {status} {answer.reason_phrase}".strip()
        snippet = answer.content[:200].decode("utf-8", "replace").strip()
        detail = f"{answer.request.method} {answer.request.url.path} answered {status}" + (
            f": {snippet}" if snippet and ctype.startswith("text/") else ""
        )
    return LogRequestRefused(
        detail or "(no detail given)", status=status, problem_title=title, problem_type=problem_type
    )


def _concise_problem(body: bytes) -> tuple[str | None, str | None, str | None]:
    try:
        problem = cbor.decode(body, "problem details")
    except MalformedCbor:
        return None, None, None
    if not isinstance(problem, dict):
        return None, None, None
    problem_type = next(
        (k for k in problem if isinstance(k, str) and k.startswith(_PROBLEM_TYPE_PREFIX)), None
    )
    return _text_or_none(problem.get(_TITLE)), _text_or_none(problem.get(_DETAIL)), problem_type


def _json_problem(body: bytes) -> tuple[str | None, str | None, str | None]:
    try:
        problem = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None, None
    if not isinstance(problem, dict):
        return None, None, None
    return (
        _text_or_none(problem.get("title")),
        _text_or_none(problem.get("detail")),
        _text_or_none(problem.get("type")),
    )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _own_entry_id(statement: bytes) -> str | None:
    """The entry id the statement makes when logged, or ``None`` if it does not decode here (the log refuses it)."""
    try:
        return entry_id(leaf_data(decode_sign1(statement)))
    except TabellionError:
        return None


def _entry_id_of(location: str) -> str:
    entry_id = location.rstrip("/").rsplit("/", 1)[-1]
    try:
        parse_entry_id(entry_id)
    except InvalidParameter as exc:
        raise LogRequestRefused(
            f"the log's Location {location[:120]!r} names no entry id", status=502
        ) from exc
    return entry_id


def _problem_code(answer: httpx.Response) -> str | None:
    """The stable code of a JSON problem answer (``urn:tabellion:error:<code>``), if it is one."""
    _, _, problem_type = _json_problem(answer.content)
    if problem_type is None or not problem_type.startswith(PROBLEM_TYPE_BASE):
        return None
    return problem_type[len(PROBLEM_TYPE_BASE):]
