"""A client of one C2SP tlog-witness (https://c2sp.org/tlog-witness), synchronous, on httpx: what the log uses to
gather cosignatures and a monitor to read what a witness cosigned.

``add_checkpoint`` returns the witness's signature lines as it sent them; the caller verifies them against
the witness's key (``verifier.notes.verify_cosignature``), since a witness's answer is trusted for nothing
else. A ``409`` raises ``WitnessSizeConflict`` with the size the witness holds; any other answer that is not
``200`` raises ``WitnessRequestRefused`` with its status; a witness that cannot be reached or answers too
slowly raises ``WitnessUnreachable``.
"""

from __future__ import annotations

import json
from types import TracebackType

import httpx

from schemas import media_types
from schemas.errors import InvalidParameter, MalformedWitnessRequest, TabellionError
from schemas.note import NoteSignature, VerifierKey
from schemas.witness import TLOG_SIZE, AddCheckpoint, origin_hash, parse_cosignatures, parse_size
from transparency.client.bounded import ANSWER_DEADLINE_S, BoundedTransport

DEFAULT_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 1024 * 1024


class WitnessUnreachable(TabellionError):
    code = "witness-unreachable"
    title = "Witness unreachable"


class WitnessRequestRefused(TabellionError):
    """The witness answered with a status other than 200 (and other than 409: ``WitnessSizeConflict``)."""

    code = "witness-request-refused"
    title = "Witness refused the request"

    def __init__(self, detail: str, answer_status: int) -> None:
        super().__init__(detail)
        self.answer_status = answer_status


class WitnessSizeConflict(WitnessRequestRefused):
    """409: the old size was not the witness's latest cosigned size, which is ``known_size``."""

    code = "witness-size-conflict"
    title = "Witness holds another size"

    def __init__(self, detail: str, known_size: int) -> None:
        super().__init__(detail, 409)
        self.known_size = known_size


class WitnessClient:
    """One witness: its name and key (as a policy's ``witness`` line gives them) and its submission URL."""

    def __init__(self, url: str, vkey: VerifierKey, *, timeout: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 answer_deadline_s: float = ANSWER_DEADLINE_S) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidParameter(f"witness URL {url[:100]!r} is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.vkey = vkey
        self._http = httpx.Client(timeout=timeout, transport=BoundedTransport(transport, max_bytes=max_answer_bytes,
                                                                              deadline_s=answer_deadline_s))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WitnessClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def add_checkpoint(self, request: AddCheckpoint) -> tuple[NoteSignature, ...]:
        """``POST <url>/add-checkpoint``: the signature lines of a ``200``."""
        answer = self._request("POST", f"{self.url}/add-checkpoint", content=request.encode(),
                               headers={"Content-Type": media_types.CHECKPOINT})
        if answer.status_code == 200:
            return parse_cosignatures(answer.content)
        if answer.status_code == 409:
            ctype = answer.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != TLOG_SIZE:
                raise WitnessRequestRefused(f"{self.url} answered 409 with {ctype or 'no content type'!r}, not "
                                            f"{TLOG_SIZE}", 409)
            try:
                known = parse_size(answer.content)
            except MalformedWitnessRequest as exc:
                raise WitnessRequestRefused(f"{self.url} answered 409 with a bad size: {exc.detail}", 409) from exc
            raise WitnessSizeConflict(f"{self.url} holds size {known}, not {request.old_size}", known)
        raise WitnessRequestRefused(f"{self.url} answered {answer.status_code}: {_problem(answer)}",
                                    answer.status_code)

    def checkpoint(self, origin: str) -> str | None:
        """``GET <url>/<origin hash>/checkpoint``: the latest checkpoint the witness cosigned for the log, as
        text (unverified), or ``None`` when it has cosigned none (404)."""
        answer = self._request("GET", f"{self.url}/{origin_hash(origin)}/checkpoint")
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise WitnessRequestRefused(f"{self.url} answered {answer.status_code}: {_problem(answer)}",
                                        answer.status_code)
        try:
            return answer.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WitnessRequestRefused(f"{self.url} served a checkpoint that is not UTF-8", 200) from exc

    def _request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        try:
            answer = self._http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TimeoutException as exc:
            raise WitnessUnreachable(f"{method} {url}: no answer in time") from exc
        except httpx.HTTPError as exc:
            raise WitnessUnreachable(f"{method} {url}: {exc}") from exc
        return answer


def _problem(answer: httpx.Response) -> str:
    """The problem's type and detail when the witness sent RFC 9457 JSON, else the start of the body."""
    try:
        problem = json.loads(answer.content)
        if isinstance(problem, dict):
            return f"{problem.get('type', '')} {problem.get('detail', '')}".strip()
    except (ValueError, UnicodeDecodeError):
        pass
    return answer.content[:200].decode("utf-8", "replace")
