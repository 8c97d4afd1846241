"""The console's pages (``webui.pages`` with the console's templates and navigation)."""

from __future__ import annotations

from typing import Final

from console.state import SignInRequired
from webui.pages import Pages

NAV: Final = [("/approvals", "Approvals"), ("/agents", "Agents"), ("/tokens", "Token inspector")]
pages = Pages("console", {"site_name": "Tabellion console", "home": "/approvals", "nav": NAV},
              passed_on=(SignInRequired,))
