"""Encryption at rest for Redis URLs (they carry passwords) and Heroku accounts' API keys.

Keys come from ENCRYPTION_KEYS (Fernet keys, newest first); the word ``derived`` in that
list stands for the key derived from SECRET_KEY, which is also the only key when the list is
empty. MultiFernet decrypts with any listed key and encrypts with the first, which is what
makes rotation possible without downtime, including from the derived key to one's own:
ENCRYPTION_KEYS=<new>,derived, ``manage.py rotate_encryption_key``, then ENCRYPTION_KEYS=<new>
(README, Key rotation). The derived key itself is never shown.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from autoscaler.env import DERIVED_KEY, encryption_keys_problem


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


def _derived_key(secret_key):
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"redis-autoscaler url encryption")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def _fernet():
    keys = list(settings.ENCRYPTION_KEYS) or [DERIVED_KEY]
    problem = encryption_keys_problem(keys)
    if problem:
        raise ImproperlyConfigured(problem)
    return MultiFernet([Fernet(_derived_key(settings.SECRET_KEY) if key == DERIVED_KEY else key) for key in keys])


def encrypt(plaintext):
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token):
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("a stored secret (Redis URL or API key) cannot be decrypted with the configured ENCRYPTION_KEYS") from None


def reencrypt(token):
    """The same secret under the newest key (for key rotation); DecryptionError if no key reads it."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("a stored secret (Redis URL or API key) cannot be decrypted with the configured ENCRYPTION_KEYS") from None
