"""A static HTTP server over a folder on 127.0.0.1 (``python -m http.server``), for logs published as files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.server import free_port, wait_until_answering


@contextmanager
def static_server(folder: Path) -> Iterator[str]:
    """``python -m http.server`` over ``folder`` on 127.0.0.1: a static server that knows nothing of the log."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(process, f"{url}/checkpoint", "the static server", lambda: "", process.terminate)
        yield url
    finally:
        process.terminate()
        process.wait(10)
