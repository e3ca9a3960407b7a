"""Schemathesis hooks for the PatchProof API: strategies for the string formats its OpenAPI document declares.

A P2PKH address carries a Base58Check checksum that no pattern can express, so random strings matching the
pattern are rejected as they should be; this strategy builds real addresses of the network the server runs on
(PATCHPROOF_FUZZ_NETWORK, "test" or "main"), so positive cases reach the routes' logic.
"""

import hashlib
import json
import os

import schemathesis
from hypothesis import strategies as st

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
VERSION = {"main": 0x00, "test": 0x6F}[os.environ.get("PATCHPROOF_FUZZ_NETWORK", "test")]


def base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(data, "big")
    encoded = ""
    while number:
        number, rest = divmod(number, 58)
        encoded = ALPHABET[rest] + encoded
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + encoded


schemathesis.openapi.format(
    "p2pkh-address", st.binary(min_size=20, max_size=20).map(lambda key_hash: base58check(bytes([VERSION]) + key_hash))
)

# secp256k1: an owner's master key (PMC) must be a point on the curve, which no hex pattern can say.
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


def point_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        slope = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return (x, (slope * (a[0] - x) - a[1]) % P)


def compressed_public_key(secret: int) -> str:
    point, addend = None, G
    while secret:
        if secret & 1:
            point = point_add(point, addend)
        addend = point_add(addend, addend)
        secret >>= 1
    return ("02" if point[1] % 2 == 0 else "03") + format(point[0], "064x")


schemathesis.openapi.format("secp256k1-public-key", st.integers(min_value=1, max_value=N - 1).map(compressed_public_key))


@schemathesis.serializer("application/x-ndjson")
def ndjson_serializer(ctx, value):
    """A batch as NDJSON: one item per line (a body that is not an array is sent as one line)."""
    items = value if isinstance(value, list) else [value]
    return {"data": "".join(json.dumps(item) + "\n" for item in items).encode()}
