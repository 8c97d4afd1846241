"""Host-local administration commands: registry key generations and webhook subscriptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.admin import add, listing
from cli.commands import run
from issuer.registry_keys import open_registry_keys
from schemas.errors import OutboundTargetRefused


def test_registry_rotate_key_adds_a_generation_and_keeps_the_old(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    first = open_registry_keys(tmp_path).current
    assert run(["registry", "rotate-key", "--data", str(tmp_path)]) == 0
    assert "generation 2" in capsys.readouterr().out
    keys = open_registry_keys(tmp_path)
    assert keys.current.generation == 2 and first.kid in keys.public_keys()


def test_webhook_subscriptions_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["webhooks", "add", "--data", str(tmp_path), "https://93.184.215.14/t", "--event", "claim.*"]) == 0
    assert run(["webhooks", "list", "--data", str(tmp_path)]) == 0
    assert "https://93.184.215.14/t\tclaim.*" in capsys.readouterr().out
    assert run(["webhooks", "remove", "--data", str(tmp_path), "1"]) == 0
    capsys.readouterr()
    assert run(["webhooks", "list", "--data", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
    assert run(["webhooks", "add", "--data", str(tmp_path), "ftp://nope", "--event", "claim.*"]) != 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8000/hook",
                                 "http://[::ffff:10.0.0.1]/", "http://localhost/hook", "http://2130706433/"])
def test_webhook_targets_that_are_not_public_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.delenv("TABELLION_OUTBOUND_ALLOW", raising=False)
    with pytest.raises(OutboundTargetRefused) as refused:
        add(tmp_path, url, ["*"])
    assert refused.value.code == "outbound-target-refused"
    assert run(["webhooks", "add", "--data", str(tmp_path), url, "--event", "*"]) == 1
    assert "Outbound target refused" in capsys.readouterr().err
    assert listing(tmp_path) == []


def test_the_operator_allows_a_range_explicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert add(tmp_path, "http://127.0.0.1:8000/a", ["*"], "127.0.0.0/8")[0].startswith("OK")
    monkeypatch.setenv("TABELLION_OUTBOUND_ALLOW", "10.0.0.0/8")
    assert add(tmp_path, "http://10.1.2.3/b", ["*"])[0].startswith("OK")
    assert len(listing(tmp_path)) == 2
