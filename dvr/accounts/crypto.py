"""Encryption of the players' OAuth tokens at rest (Fernet, with key rotation).

``settings.TOKEN_ENCRYPTION_KEYS`` lists Fernet keys, newest first. `MultiFernet`
encrypts with the first and decrypts with any, so rotating is: prepend a new key, deploy,
run ``manage.py rotate_token_keys`` (re-encrypts every row with the new key), then drop
the old key. A value no configured key opens raises `TokenUndecryptable`; the caller
treats it as "log in again", since the player's tokens are then as good as gone.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.views.decorators.debug import sensitive_variables


class TokenUndecryptable(Exception):
    """No configured key opens a stored token (a key was dropped too early)."""


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _fernet() -> MultiFernet:
    # Keyed by the setting's value so a test (or a reload) that changes keys is honoured.
    return _fernet_for(tuple(settings.TOKEN_ENCRYPTION_KEYS))


@sensitive_variables()
def token_encrypt(plaintext: str) -> str:
    """Ciphertext (url-safe text) of ``plaintext`` under the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


@sensitive_variables()
def token_decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        # The message names no value: neither ciphertext nor anything derived from it.
        raise TokenUndecryptable("no key in TOKEN_ENCRYPTION_KEYS opens this stored token") from None


@sensitive_variables()
def token_reencrypt(ciphertext: str) -> str:
    """The same plaintext, encrypted under the newest key (for key rotation)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenUndecryptable("no key in TOKEN_ENCRYPTION_KEYS opens this stored token") from None
