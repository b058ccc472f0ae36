#!/usr/bin/python3
"""Writes the generated PSKC fixtures of otp-enroll's inventory tests into
tests/data/pskc/ (see the README there), with python3-pskc (an
independent implementation of RFC 6030) where it can write the layout,
and with Python's own cryptography where python-pskc writes only what RFC
6030 says (the drafts' layouts, a MAC over the plain value). Run it from
anywhere; it overwrites the files it writes. IVs and MAC keys are random,
so each run writes different bytes with the same content.

    python3 otp-enroll/tests/pskc/fixtures.py
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import os
import re

import dateutil.tz
import pskc
from pskc.key import EncryptedValue
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, '..', 'data', 'pskc')
KEY = binascii.unhexlify('000102030405060708090a0b0c0d0e0f')
NS = 'urn:ietf:params:xml:ns:keyprov:pskc'


def seed(tag, n=20):
    """A different known seed per token (as tests/inventory.rs's seed())."""
    return bytes(((i * 37) & 0xff) ^ tag for i in range(n))


def out(name):
    return os.path.join(DATA, name)


def encrypted(p):
    p.encryption.setup_preshared_key(key=KEY, algorithm='aes128-cbc',
                                     key_name='Pre-shared-key')
    p.mac.setup(algorithm='hmac-sha1')


def counter_ascii():
    """Item 1: the counter encrypted as the decimal text "298507" (as
    some vendors write it) beside the same counter as RFC 6030's
    big-endian integer (as python-pskc writes it)."""
    p = pskc.PSKC()
    encrypted(p)
    text = p.add_key(serial='CTR-TEXT', secret=seed(0x31),
                     algorithm=NS + ':hotp', response_length=6,
                     response_encoding='DECIMAL')
    text._counter = EncryptedValue.create(p, b'298507')
    p.add_key(serial='CTR-BIN', secret=seed(0x32), algorithm=NS + ':hotp',
              response_length=6, response_encoding='DECIMAL', counter=298507)
    p.encryption.fields = ['secret', 'counter']
    p.write(out('counter-text-aes128.xml'))


def policies():
    """Item 2: RFC 6030 section 5 policies, one key each."""
    p = pskc.PSKC()
    utc = dateutil.tz.tzutc()
    plus2 = dateutil.tz.tzoffset(None, 2 * 3600)
    minus5 = dateutil.tz.tzoffset(None, -5 * 3600)

    def key(serial, tag, kind='hotp', **kw):
        args = dict(serial=serial, secret=seed(tag),
                    algorithm=NS + ':' + kind, response_length=6,
                    response_encoding='DECIMAL')
        if kind == 'hotp':
            args['counter'] = tag
        else:
            args['time_interval'] = 30
        args.update(kw)
        return p.add_key(**args)

    k = key('POL-DATES', 0x41, kind='totp')
    k.policy.start_date = datetime.datetime(2020, 1, 1, 0, 0, 0, tzinfo=plus2)
    k.policy.expiry_date = datetime.datetime(2099, 12, 31, 23, 0, 0,
                                             tzinfo=minus5)
    k.policy.key_usage = ['OTP']
    k = key('POL-EXPIRED', 0x42)
    k.policy.expiry_date = datetime.datetime(2021, 6, 30, 12, 0, 0,
                                             tzinfo=utc)
    k = key('POL-DEVICE-EXPIRED', 0x43)
    k.device.expiry_date = datetime.datetime(2022, 1, 31, 0, 0, 0,
                                             tzinfo=utc)
    k = key('POL-CR', 0x44)
    k.policy.key_usage = ['CR', 'Integrity']
    k = key('POL-LOCAL', 0x45, algorithm_suite='HMAC-SHA256',
            response_length=8)
    k.policy.key_usage = ['OTP', 'Unlock']
    k.policy.pin_usage = 'Local'
    k.policy.pin_min_length = 4
    k.policy.pin_max_failed_attempts = 3
    k = key('POL-PREPEND', 0x46, algorithm_suite='HMAC-SHA512',
            secret=seed(0x46, 64))
    k.policy.pin_usage = 'Prepend'
    k = key('POL-APPEND', 0x47, kind='totp')
    k.policy.pin_usage = 'Append'
    k = key('POL-ALGORITHMIC', 0x48)
    k.policy.pin_usage = 'Algorithmic'
    k = key('POL-TRANSACTIONS', 0x49)
    k.policy.number_of_transactions = 10
    k = key('POL-UNKNOWN', 0x4a)
    k.policy.key_usage = ['OTP']
    p.write(out('policy.xml'))
    # python-pskc writes only the policy elements it knows: an element
    # RFC 6030 does not define, put in by hand.
    with open(out('policy.xml')) as f:
        xml = f.read()
    start = xml.index('<pskc:SerialNo>POL-UNKNOWN<')
    at = xml.index('<pskc:KeyUsage>OTP</pskc:KeyUsage>', start)
    xml = (xml[:at] + '<pskc:OnWeekDaysOnly>true</pskc:OnWeekDaysOnly>' +
           xml[at:])
    with open(out('policy.xml'), 'w') as f:
        f.write(xml)


def multiotp_txt():
    """Item 4: an encrypted RFC 6030 file named .txt (multiOTP ships its
    samples so), and the same text with a UTF-8 byte order mark, and in
    UTF-16."""
    p = pskc.PSKC()
    encrypted(p)
    p.add_key(serial='TXT-HOTP', secret=seed(0x51), algorithm=NS + ':hotp',
              response_length=6, response_encoding='DECIMAL', counter=5)
    p.add_key(serial='TXT-TOTP', secret=seed(0x52, 32),
              algorithm=NS + ':totp', algorithm_suite='HMAC-SHA256',
              response_length=8, response_encoding='DECIMAL',
              time_interval=60)
    p.write(out('multiotp-layout.txt'))
    with open(out('multiotp-layout.txt'), 'rb') as f:
        xml = f.read()
    with open(out('multiotp-layout-bom.txt'), 'wb') as f:
        f.write(b'\xef\xbb\xbf' + xml)
    text = xml.decode().replace("encoding='UTF-8'", "encoding='UTF-16'")
    with open(out('multiotp-layout-utf16.txt'), 'wb') as f:
        f.write(text.encode('utf-16'))


def aes_cbc(plain, iv):
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
    return iv + enc.update(data) + enc.finalize()


def mac_variants():
    """Item 6: the MAC named by the xmldsig-more URI for HMAC-SHA1, and a
    MAC over the plain values (the drafts' way), both otherwise python-pskc
    output with the right key."""
    p = pskc.PSKC()
    encrypted(p)
    p.add_key(serial='MAC-MORE', secret=seed(0x61), algorithm=NS + ':hotp',
              response_length=6, response_encoding='DECIMAL', counter=3)
    p.write(out('mac-xmldsig-more-sha1.xml'))
    with open(out('mac-xmldsig-more-sha1.xml')) as f:
        xml = f.read()
    xml = xml.replace('http://www.w3.org/2000/09/xmldsig#hmac-sha1',
                      'http://www.w3.org/2001/04/xmldsig-more#hmac-sha1')
    with open(out('mac-xmldsig-more-sha1.xml'), 'w') as f:
        f.write(xml)

    # Over the plain value: python-pskc writes the MAC over the
    # ciphertext; each ValueMAC is recomputed over what its value
    # decrypts to, with the file's own MAC key.
    p = pskc.PSKC()
    encrypted(p)
    p.add_key(serial='MAC-PLAIN', secret=seed(0x62), algorithm=NS + ':hotp',
              response_length=8, response_encoding='DECIMAL', counter=11)
    p.encryption.fields = ['secret', 'counter']
    p.write(out('mac-over-plaintext.xml'))
    with open(out('mac-over-plaintext.xml')) as f:
        xml = f.read()
    mac_key = p.mac.key

    def fix(m):
        cipher = base64.b64decode(m.group(2))
        plain = p.encryption.decrypt_value(cipher)
        tag = hmac.new(mac_key, plain, hashlib.sha1).digest()
        return m.group(1) + base64.b64encode(tag).decode() + m.group(3)

    xml = re.sub(
        r'(<xenc:CipherValue>([^<]*)</xenc:CipherValue>\s*</xenc:CipherData>'
        r'\s*</pskc:EncryptedValue>\s*<pskc:ValueMAC>)[^<]*(</pskc:ValueMAC>)',
        fix, xml)
    with open(out('mac-over-plaintext.xml'), 'w') as f:
        f.write(xml)


def activid_layout():
    """Item 5: the layout of ActivIdentity's customer files as python-pskc's
    tests/actividentity describes it (draft-hoyer-keyprov-portable-
    symmetric-key-container: the container:1.0 namespace, EncryptionMethod
    and DigestMethod in the container, <Data Name="SECRET"><Value>, a MAC
    over the plain value with the encryption key), with a seed of ours."""
    secret = seed(0x71)
    iv = os.urandom(16)
    value = aes_cbc(secret, iv)
    digest = hmac.new(KEY, secret, hashlib.sha1).digest()
    counter = (12345).to_bytes(8, 'big')
    xml = f'''<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:container:1.0" version="1.0">
<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc">
<IV>{base64.b64encode(iv).decode()}</IV>
</EncryptionMethod>
<DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1"/>
<Device>
<DeviceId>
<Manufacturer>ActivIdentity</Manufacturer>
<SerialNo>AI-0001</SerialNo>
</DeviceId>
<Key KeyAlgorithm="http://www.ietf.org/keyprov/pskc#hotp" KeyId="AI-0001">
<Issuer>ActivIdentity</Issuer>
<Usage OTP="true">
<ResponseFormat Format="DECIMAL" Length="8"/>
</Usage>
<Data Name="SECRET">
<Value>{base64.b64encode(value[16:]).decode()}</Value>
<ValueDigest>{base64.b64encode(digest).decode()}</ValueDigest>
</Data>
<Data Name="COUNTER">
<Value>{base64.b64encode(counter).decode()}</Value>
</Data>
</Key>
</Device>
</KeyContainer>
'''
    with open(out('activid-layout.xml'), 'w') as f:
        f.write(xml)


if __name__ == '__main__':
    counter_ascii()
    policies()
    multiotp_txt()
    mac_variants()
    activid_layout()
