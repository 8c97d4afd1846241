"""Data plane: verified agent requests, decisions from the log (later issues)."""
