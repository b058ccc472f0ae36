#!/usr/bin/python3
"""What python3-pskc (an independent implementation of RFC 6030) reads in
a PSKC file, as JSON on standard output, for otp-enroll's inventory tests
to compare with what otp-enroll imported, token by token.

usage: read.py FILE [--key HEX | --passphrase TEXT]

Prints {"error": TEXT} when python-pskc refuses the file, else
{"keys": [...]}, one object per key, in file order:
  serial, algorithm (the URI), kind ("hotp"/"totp"/null), hash ("SHA1",
  "SHA256", "SHA512"), digits, counter, period, secret (hex), start and
  expiry (the key's Policy dates and its device's, each as Unix seconds in
  UTC, or null), key_usage, pin_usage, number_of_transactions,
  unknown_policy_elements, may_use (python-pskc's Policy.may_use('OTP')
  now), and codes: the key's first codes computed here with Python's hmac
  (HOTP at counter, counter+1 and counter+17; TOTP at the Unix times 59,
  1111111109 and 2000000000), never with otp-enroll's code.
"""

import binascii
import datetime
import json
import sys

import dateutil.tz
import pskc

import otp


def unix(d):
    if d is None:
        return None
    if d.tzinfo is None:  # as otp-enroll reads a date without a zone
        d = d.replace(tzinfo=dateutil.tz.tzutc())
    return int(d.timestamp())


def main():
    path = sys.argv[1]
    try:
        p = pskc.PSKC(path)
        if len(sys.argv) > 3 and sys.argv[2] == '--key':
            p.encryption.key = binascii.unhexlify(sys.argv[3])
        elif len(sys.argv) > 3 and sys.argv[2] == '--passphrase':
            p.encryption.derive_key(sys.argv[3])
        keys = []
        for k in p.keys:
            alg = k.algorithm or ''
            kind = alg.rsplit(':', 1)[-1].rsplit('#', 1)[-1].lower()
            kind = kind if kind in ('hotp', 'totp') else None
            suite = (k.algorithm_suite or 'HMAC-SHA1').upper()
            hash_name = suite.replace('HMAC-', '').replace('-', '')
            secret = k.secret
            digits = k.response_length or 6
            counter = k.counter or 0
            period = k.time_interval or 30
            codes = None
            if kind and secret:
                if kind == 'hotp':
                    codes = [otp.hotp(secret, c, digits, hash_name)
                             for c in (counter, counter + 1, counter + 17)]
                else:
                    codes = [otp.totp(secret, t, period, digits, hash_name)
                             for t in (59, 1111111109, 2000000000)]
            keys.append(dict(
                serial=k.serial, algorithm=alg, kind=kind, hash=hash_name,
                digits=digits, counter=counter, period=period,
                secret=binascii.hexlify(secret).decode() if secret else None,
                policy_start=unix(k.policy.start_date),
                policy_expiry=unix(k.policy.expiry_date),
                device_start=unix(k.start_date),
                device_expiry=unix(k.expiry_date),
                key_usage=k.policy.key_usage,
                pin_usage=k.policy.pin_usage,
                number_of_transactions=k.policy.number_of_transactions,
                unknown_policy_elements=k.policy.unknown_policy_elements,
                may_use=k.policy.may_use(
                    'OTP', datetime.datetime.now(dateutil.tz.tzutc())),
                codes=codes,
            ))
        print(json.dumps(dict(keys=keys)))
    except Exception as e:  # python-pskc refuses the file
        print(json.dumps(dict(error='%s: %s' % (type(e).__name__, e))))


main()
