"""HTML pages: Jinja2 templates (the front end's own, then the shared layout), static assets, security headers,
and refusals rendered as pages.

Every page is server-rendered and works without JavaScript for reading; scripts are same-origin files (no inline
script: the Content-Security-Policy forbids it), used only for the in-browser checks and the passkey ceremonies.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from schemas.errors import TabellionError
from transparency.problem_details import problem_status
from webui.identities import short_did

ASSETS: Final = "/assets"
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer makes browsers send "Origin: null" on form posts
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
Endpoint = Callable[[Request], Awaitable[Response]]


class Pages:
    """The templates of one front end (``package``/templates first, then ``webui``/templates)."""

    def __init__(self, package: str, globals_: Mapping[str, Any] | None = None,
                 passed_on: tuple[type[TabellionError], ...] = ()) -> None:
        self.passed_on = passed_on  # errors ``guarded`` lets through (to a caller that answers them otherwise)
        env = Environment(
            loader=ChoiceLoader([PackageLoader(package, "templates"), PackageLoader("webui", "templates")]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True, lstrip_blocks=True,
        )
        env.globals.update({"assets": ASSETS, **(globals_ or {})})
        env.filters["short"] = short_did
        self.templates = Jinja2Templates(env=env)

    def render(self, request: Request, template: str, context: Mapping[str, Any], status: int = 200,
               headers: Mapping[str, str] | None = None) -> Response:
        return self.templates.TemplateResponse(request, template, dict(context), status_code=status,
                                               headers={**SECURITY_HEADERS, **(headers or {})})

    def refusal(self, request: Request, error: TabellionError) -> Response:
        """A refusal as a page: the status, the stable code and the detail."""
        status = problem_status(error)
        return self.render(request, "error.html", {"error": error, "title": error.title, "status": status}, status)

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint``, with every ``TabellionError`` it raises answered as a page (not problem+json)."""

        @functools.wraps(endpoint)
        async def page(request: Request) -> Response:
            try:
                return await endpoint(request)
            except self.passed_on:
                raise
            except TabellionError as exc:
                return self.refusal(request, exc)

        return page


def assets(*packages: str) -> Mount:
    """``/assets``: the static files of ``packages`` (each one's ``static`` folder), then the shared ones."""
    return Mount(ASSETS, StaticFiles(packages=[(p, "static") for p in (*packages, "webui")]), name="assets")
