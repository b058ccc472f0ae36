#!/usr/bin/python3
"""Writes a PSKC file with python3-pskc (an independent implementation of
RFC 6030) for otp-enroll's inventory tests.

Reads a JSON object on standard input:
  {"out": PATH, "mode": "plain" | "preshared" | "pbkdf2",
   "key": HEX (preshared), "password": TEXT (pbkdf2), "iterations": N,
   "algorithm": "aes128-cbc" | "aes256-cbc", "mac": "hmac-sha1" | "hmac-sha256",
   "tokens": [{"serial": S, "type": "hotp" | "totp", "secret": HEX,
               "digits": N, "counter": N, "period": N, "suite": TEXT}]}
"""

import binascii
import json
import sys

import pskc

spec = json.load(sys.stdin)
p = pskc.PSKC()
for t in spec["tokens"]:
    kwargs = dict(
        secret=binascii.unhexlify(t["secret"]),
        algorithm="urn:ietf:params:xml:ns:keyprov:pskc:" + t["type"],
        response_length=t.get("digits", 6),
        response_encoding="DECIMAL",
    )
    if t.get("serial") is not None:
        kwargs["serial"] = t["serial"]
    if t["type"] == "hotp":
        kwargs["counter"] = t.get("counter", 0)
    else:
        kwargs["time_interval"] = t.get("period", 30)
    if t.get("suite"):
        kwargs["algorithm_suite"] = t["suite"]
    p.add_key(**kwargs)

algorithm = spec.get("algorithm", "aes128-cbc")
mode = spec["mode"]
if mode == "preshared":
    p.encryption.setup_preshared_key(
        key=binascii.unhexlify(spec["key"]), algorithm=algorithm,
        key_name="Pre-shared-key")
elif mode == "pbkdf2":
    p.encryption.setup_pbkdf2(
        spec["password"], algorithm=algorithm,
        iterations=spec.get("iterations", 1000), key_name="Passphrase")
if mode != "plain":
    p.mac.setup(algorithm=spec.get("mac", "hmac-sha1"))
p.write(spec["out"])
