#!/usr/bin/python3
"""HOTP (RFC 4226) and TOTP (RFC 6238) with Python's own hmac and hashlib,
for otp-enroll's inventory tests: the codes a token's seed gives, computed
without otp-enroll's code (and with the hash oathtool's --hotp ignores).

usage: otp.py hotp HEXKEY HASH DIGITS COUNTER...
       otp.py totp HEXKEY HASH DIGITS PERIOD UNIXTIME...
prints one code a line.
"""

import binascii
import hashlib
import hmac
import struct
import sys


def hotp(key, counter, digits=6, hash_name='SHA1'):
    mac = hmac.new(key, struct.pack('>Q', counter),
                   getattr(hashlib, hash_name.lower())).digest()
    offset = mac[-1] & 0x0f
    number = struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7fffffff
    return str(number % 10 ** digits).zfill(digits)


def totp(key, unix_time, period=30, digits=6, hash_name='SHA1'):
    return hotp(key, unix_time // period, digits, hash_name)


if __name__ == '__main__':
    kind, key, hash_name, digits = sys.argv[1:5]
    key = binascii.unhexlify(key)
    if kind == 'hotp':
        for c in sys.argv[5:]:
            print(hotp(key, int(c), int(digits), hash_name))
    else:
        period = int(sys.argv[5])
        for t in sys.argv[6:]:
            print(totp(key, int(t), period, int(digits), hash_name))
