"""``tabellion monitor``: follows a log, checks every checkpoint's consistency, and compares what the log serves
with what its witnesses cosigned and other monitors saw (see docs/witnessing.md)."""
