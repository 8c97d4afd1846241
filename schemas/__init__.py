"""Wire formats of Tabellion: COSE/CBOR labels, the log leaf, receipt and checkpoint shapes, errors.

No I/O lives here. Everything else imports its formats from this package, so a format is decided once.
"""
