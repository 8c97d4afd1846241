"""COSE and CWT labels used on the wire (RFC 9052, RFC 9360, RFC 8392, RFC 9597, RFC 9942, RFC 9995)."""

from __future__ import annotations

from typing import Final

# COSE common header parameters (RFC 9052 §3.1, RFC 9360)
ALG: Final = 1
CRIT: Final = 2
CONTENT_TYPE: Final = 3
KID: Final = 4
X5CHAIN: Final = 33
CWT_CLAIMS: Final = 15  # RFC 9597

# CWT claims (RFC 8392)
CWT_ISS: Final = 1
CWT_SUB: Final = 2
CWT_EXP: Final = 4
CWT_NBF: Final = 5
CWT_IAT: Final = 6

# COSE Hash Envelope (RFC 9995)
PAYLOAD_HASH_ALG: Final = 258
PREIMAGE_CONTENT_TYPE: Final = 259
PAYLOAD_LOCATION: Final = 260

# Receipts (RFC 9942)
RECEIPTS: Final = 394
VDS: Final = 395
VDP: Final = 396
VDP_INCLUSION: Final = -1
VDP_CONSISTENCY: Final = -2
VDS_RFC9162_SHA256: Final = 1

# Algorithms (RFC 9053, RFC 9054)
ALG_EDDSA: Final = -8
ALG_ES256: Final = -7
HASH_SHA256: Final = -16
HASH_SHA384: Final = -43
HASH_SHA512: Final = -44
HASH_LENGTHS: Final = {HASH_SHA256: 32, HASH_SHA384: 48, HASH_SHA512: 64}
SIGNING_ALGORITHMS: Final = {ALG_EDDSA: "EdDSA", ALG_ES256: "ES256"}

# COSE_Key (RFC 9052 §7, RFC 9053)
KEY_KTY: Final = 1
KEY_KID: Final = 2
KEY_ALG: Final = 3
KTY_OKP: Final = 1
KTY_EC2: Final = 2
KEY_CRV: Final = -1
KEY_X: Final = -2
KEY_Y: Final = -3
CRV_P256: Final = 1
CRV_ED25519: Final = 6

COSE_SIGN1_TAG: Final = 18
