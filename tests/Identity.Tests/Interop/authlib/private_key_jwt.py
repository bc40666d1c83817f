#!/usr/bin/env python3
"""Authlib (python3-authlib, Debian) as a private_key_jwt client of the service: discovery, client credentials and
introspection, each authenticated with an assertion Authlib signs itself (RFC 7523 §2.2, OpenID Connect Core §9).

    python3 private_key_jwt.py ISSUER CLIENT_ID KEY.pem ALG

Prints one "ok <scenario>" line per step; exits non-zero at the first failure.
"""
import json
import os
import sys
import urllib.request
from urllib.parse import urlparse

issuer, client_id, key_path, alg = sys.argv[1:5]
if urlparse(issuer).hostname in ("127.0.0.1", "localhost", "::1"):
    # Authlib refuses plain HTTP unless told; the service under test listens on loopback only.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # noqa: E402

with urllib.request.urlopen(issuer.rstrip("/") + "/.well-known/openid-configuration") as response:
    discovery = json.load(response)
assert "private_key_jwt" in discovery["token_endpoint_auth_methods_supported"], discovery
print("ok discovery")

with open(key_path, "rb") as file:
    private_key = file.read()

token_endpoint = discovery["token_endpoint"]
# revocation_endpoint_auth_method covers introspection too; left unset, Authlib sends its "client secret" (here the PEM
# private key) in a Basic header to those endpoints, which a key-only client must never do (and the service refuses).
session = OAuth2Session(client_id, private_key, token_endpoint_auth_method="private_key_jwt",
                        revocation_endpoint_auth_method="private_key_jwt", scope="crm.api")
session.register_client_auth_method(PrivateKeyJWT(token_endpoint, alg=alg))
token = session.fetch_token(token_endpoint, grant_type="client_credentials")
assert token.get("access_token"), token
print("ok client_credentials")

# A fresh assertion per request (Authlib makes a new jti each time), here for the introspection endpoint.
introspection = session.introspect_token(discovery["introspection_endpoint"], token=token["access_token"])
assert introspection.status_code == 200 and introspection.json().get("active") is True, f"{introspection.status_code} {introspection.text}"
print("ok introspection")
