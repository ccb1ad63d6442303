"""Verifies a FitFlow access token with PyJWT against identity's JWKS document,
as another team's Python service would. Prints the token's subject.

Usage: verify_jwt.py --jwks FILE --token TOKEN
Exits non-zero (PyJWT's exception) when the token does not verify.
"""

import argparse
import json
import sys

import jwt


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jwks", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    with open(args.jwks, encoding="utf-8") as handle:
        key_set = jwt.PyJWKSet.from_dict(json.load(handle))
    key_id = jwt.get_unverified_header(args.token)["kid"]
    key = next(key for key in key_set.keys if key.key_id == key_id)
    claims = jwt.decode(
        args.token,
        key.key,
        algorithms=["EdDSA"],
        audience="fitflow",
        issuer="fitflow-identity",
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
    print(claims["sub"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
