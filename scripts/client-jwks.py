#!/usr/bin/env python3
"""Prints the public JSON Web Key Set of a client's key pair, for Identity:Clients:N:Jwks (private_key_jwt).

    python3 scripts/client-jwks.py client-key.pem > client-jwks.json

The PEM may hold the private key (PKCS#8 or traditional) or the public key; only the public half is printed, with
"kid" set to its RFC 7638 thumbprint and "use": "sig". Needs python3-cryptography (Debian).
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_key(pem: bytes):
    try:
        return serialization.load_pem_private_key(pem, password=None).public_key()
    except ValueError:
        return serialization.load_pem_public_key(pem)


def jwk(key) -> dict:
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        members = {"e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")), "kty": "RSA",
                   "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))}
        alg = "RS256"
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in CURVES:
        crv, size = CURVES[key.curve.name]
        numbers = key.public_numbers()
        members = {"crv": crv, "kty": "EC", "x": b64url(numbers.x.to_bytes(size, "big")), "y": b64url(numbers.y.to_bytes(size, "big"))}
        alg = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv]
    else:
        sys.exit("error: the key must be RSA or EC on P-256, P-384 or P-521")
    # RFC 7638 §3: the thumbprint is the SHA-256 of the required members in lexicographic order, without spaces.
    thumbprint = b64url(hashlib.sha256(json.dumps(members, sort_keys=True, separators=(",", ":")).encode("utf-8")).digest())
    return {**members, "kid": thumbprint, "use": "sig", "alg": alg}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: client-jwks.py KEY.pem")
    with open(sys.argv[1], "rb") as file:
        print(json.dumps({"keys": [jwk(public_key(file.read()))]}))
