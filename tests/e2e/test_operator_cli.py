"""The operator CLI against a real server: every command signs locally, submits, prints one line."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cli_process import entry_of, tabellion
from tests.server import running_server


def test_operator_lifecycle_from_the_command_line(tmp_path: Path) -> None:
    dids = {name: tabellion("keygen", "-o", str(tmp_path / f"{name}.pem")).stdout.strip()
            for name in ("op", "op-next", "agent", "sub")}

    def key(name: str) -> str:
        return str(tmp_path / f"{name}.pem")

    scope = ["--services", "mail", "--actions", "read,write", "--resources", "mail/*"]
    with running_server(tmp_path) as url:
        tabellion("register", url, "--key", key("op"), "--next-key", key("op-next"), "--namespace", "acme")
        tabellion("consent", url, "--key", key("agent"), "--operator", dids["op"])
        tabellion("passport", url, "--key", key("op"), "--agent", dids["agent"], "--tier", "software",
                  "--fingerprint", "sha256:" + "ab" * 32, "--jurisdiction", "EU", "--policy-bundle",
                  "sha256:" + "cd" * 32, "--status-list", "https://issuer.example/status/1", "--status-index", "7")
        root = entry_of(tabellion("delegate", url, "--key", key("op"), "--agent", dids["agent"], *scope,
                                  "--ttl", "3600", "--max-depth", "1"))
        tabellion("delegate", url, "--key", key("agent"), "--agent", dids["sub"], "--parent", root, "--services",
                  "mail", "--actions", "read", "--resources", "mail/inbox/*", "--ttl", "600")
        claim = entry_of(tabellion("claim", "submit", url, "--key", key("agent"), "--claim-id", "mail-1",
                                   "--namespace", "acme", "--service", "mail", *scope))
        receipt = tmp_path / "approval.cose"
        tabellion("claim", "approve", url, claim, "--key", key("op"), "--note", "ok", "--receipt", str(receipt))
        assert receipt.stat().st_size > 100

        verdict = httpx.get(f"{url}/v1/verify", params={"agent": dids["agent"], "service": "mail", "action": "write",
                                                       "resource": "mail/x"})
        assert verdict.status_code == 200 and verdict.json()["root_principal"] == dids["op"]

        # a refusal is one readable line on stderr, and nothing is logged
        size = httpx.get(f"{url}/checkpoint").text.split("\n")[1]
        again = tabellion("claim", "approve", url, claim, "--key", key("op"), ok=False)
        assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
        assert httpx.get(f"{url}/checkpoint").text.split("\n")[1] == size

        tabellion("revoke", url, "--key", key("op"), "--target", dids["agent"], "--reason", "keyCompromise")
        assert httpx.post(f"{url}/api/agent/verify", json={"agent": dids["agent"]}).json()["policy_decision"] == "BLOCK"
