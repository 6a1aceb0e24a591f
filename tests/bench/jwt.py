"""RS256 and ES256 keys, their JWKS and a long-lived token for each, made with the openssl CLI."""
import base64
import json
import os
import subprocess
import time

ISSUERS = {"RS256": "https://rs.bench.meshgate", "ES256": "https://es.bench.meshgate"}
AUDIENCE = "bench-api"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def _der_ints(der):
    """The two INTEGERs of an ECDSA DER signature, as 32-byte big-endian values."""
    out, i = [], 2 if der[1] < 0x80 else 3
    while i < len(der) and len(out) < 2:
        n = der[i + 1]
        v = der[i + 2 : i + 2 + n].lstrip(b"\x00")
        out.append(v.rjust(32, b"\x00"))
        i += 2 + n
    return out[0] + out[1]


def make_keys(workdir, now=None):
    """Returns {alg: {"jwk": dict, "token": str}}; tokens valid from `now` for a day."""
    rs_key, es_key = os.path.join(workdir, "rs.pem"), os.path.join(workdir, "es.pem")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rs_key)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", es_key)
    modulus = _openssl("rsa", "-in", rs_key, "-noout", "-modulus").decode().strip().split("=")[1]
    rs_jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "rs1",
              "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}
    point = _openssl("pkey", "-in", es_key, "-pubout", "-outform", "DER")[-65:]
    es_jwk = {"kty": "EC", "alg": "ES256", "use": "sig", "kid": "es1", "crv": "P-256",
              "x": b64url(point[1:33]), "y": b64url(point[33:65])}
    now = int(time.time()) if now is None else now
    out = {}
    for alg, key, jwk in (("RS256", rs_key, rs_jwk), ("ES256", es_key, es_jwk)):
        header = {"alg": alg, "typ": "JWT", "kid": jwk["kid"]}
        claims = {"iss": ISSUERS[alg], "aud": AUDIENCE, "sub": "users/bench",
                  "iat": now, "exp": now + 24 * 3600}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        sig = _openssl("dgst", "-sha256", "-sign", key, data=signing_input)
        if alg == "ES256":
            sig = _der_ints(sig)
        out[alg] = {"jwk": jwk, "token": signing_input.decode() + "." + b64url(sig)}
    return out
