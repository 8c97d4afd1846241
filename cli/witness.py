"""The witness's command (its own process):

    tabellion witness --config witness.toml          # run it (Hypercorn)
    tabellion witness --config witness.toml --vkey   # print its cosigner vkey and its did:key, then exit

The key file is created on first use, so ``--vkey`` can be run before the first start to write the policies
that name the witness. The did:key is the same Ed25519 key: an operator may list it as a rotation witness
(docs/witnessing.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from witness.config import load_config

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def witness_identity(config_file: Path) -> list[str]:
    from witness.app import load_or_create_cosigner

    cosigner = load_or_create_cosigner(load_config(config_file))
    return [cosigner.vkey.encode(), cosigner.did]


def run_witness(config_file: Path) -> int:
    from witness.app import serve
    from witness.service import Witness

    config = load_config(config_file)

    def opened(witness: Witness) -> None:
        print(f"tabellion: witness {witness.cosigner.vkey.encode()} on http://{config.host}:{config.port} for "
              f"{', '.join(sorted(config.logs))} (data {config.data_dir})", file=sys.stderr, flush=True)

    serve(config, opened=opened)
    return 0


def add_witness_command(commands: Any, command: Command, show: Callable[[list[str]], int]) -> None:
    def run(a: argparse.Namespace) -> int:
        if a.vkey:
            return show(witness_identity(a.config))
        return run_witness(a.config)

    p = command(commands, "witness", run, "run a C2SP tlog-witness: cosign the checkpoints of known logs")
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="the witness's TOML configuration")
    p.add_argument("--vkey", action="store_true", help="print the witness's vkey and did:key and exit")
