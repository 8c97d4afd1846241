"""The public log explorer: HTML pages over the transparency service's public reads, for auditors and regulators.

Nothing here is trusted by anyone: every page says how to check what it shows (the receipt check runs in the
reader's browser against the log key they pinned; the audit bundle is checked by ``tabellion verify bundle``).
"""
