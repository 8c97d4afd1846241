"""Host-local administration commands: registry key generations and webhook subscriptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.commands import run
from issuer.registry_keys import open_registry_keys


def test_registry_rotate_key_adds_a_generation_and_keeps_the_old(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    first = open_registry_keys(tmp_path).current
    assert run(["registry", "rotate-key", "--data", str(tmp_path)]) == 0
    assert "generation 2" in capsys.readouterr().out
    keys = open_registry_keys(tmp_path)
    assert keys.current.generation == 2 and first.kid in keys.public_keys()


def test_webhook_subscriptions_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["webhooks", "add", "--data", str(tmp_path), "https://hooks.example/t", "--event", "claim.*"]) == 0
    assert run(["webhooks", "list", "--data", str(tmp_path)]) == 0
    assert "https://hooks.example/t\tclaim.*" in capsys.readouterr().out
    assert run(["webhooks", "remove", "--data", str(tmp_path), "1"]) == 0
    capsys.readouterr()
    assert run(["webhooks", "list", "--data", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
    assert run(["webhooks", "add", "--data", str(tmp_path), "ftp://nope", "--event", "claim.*"]) != 0
    assert "Traceback" not in capsys.readouterr().err
