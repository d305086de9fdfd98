"""Encryption at rest for Redis URLs (they carry passwords).

Keys come from ENCRYPTION_KEYS (Fernet keys, newest first); unset, one key is derived from
SECRET_KEY. MultiFernet decrypts with any listed key and encrypts with the first, which is
what makes rotation possible without downtime.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


def _derived_key(secret_key):
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"redis-autoscaler url encryption")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def _fernet():
    keys = list(settings.ENCRYPTION_KEYS) or [_derived_key(settings.SECRET_KEY)]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "ENCRYPTION_KEYS must be Fernet keys (44 url-safe base64 characters), comma separated"
        ) from None


def encrypt(plaintext):
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token):
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("stored Redis URL cannot be decrypted with the configured ENCRYPTION_KEYS") from None


def reencrypt(token):
    """The same secret under the newest key (for key rotation)."""
    return _fernet().rotate(token.encode()).decode()
