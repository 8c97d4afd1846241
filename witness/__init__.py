"""A C2SP tlog-witness server (``tabellion witness --config FILE``): it cosigns the checkpoints of the logs it
knows, each only if it is consistent with the last one it cosigned for that log (see docs/witnessing.md)."""
