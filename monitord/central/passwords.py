"""People's console passwords: hashed with scrypt, checked in constant time.

Unlike tokens (256 random bits, see auth.py), passwords are chosen by people and can be
guessed, so each is stored as a slow, memory-hard, salted hash: scrypt with n=2**15, r=8,
p=1 (32 MiB and tens of milliseconds per try), a 16-byte random salt, and its parameters
in the stored string itself (``scrypt$n$r$p$salt$hash``, base64) so that they can be
raised later without breaking the hashes made before.

Checking a name that has no password still computes one hash (of a fixed dummy), so the
time a login takes does not tell whether the name exists.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MAXMEM_BYTES = 64 * 1024 * 1024     # scrypt needs 128 * n * r = 32 MiB of it
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 12
MAX_LENGTH = 1024                   # longer is a paste gone wrong, and costs hashing time
_MAX_N = 2**20                      # a stored hash asking for more is not one of ours


def hash_password(password: str) -> str:
    """The self-describing hash of ``password`` to store: ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join((SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt),
                     _b64(digest)))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; None or a malformed hash is a (slow) no."""
    parsed = _parse(stored) if stored else None
    if parsed is None:
        _scrypt(password, *_dummy())    # the same work as a real check
        return False
    n, r, p, salt, expected = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(expected)), expected)


def password_problem(password: str) -> str:
    """Why ``password`` may not be set, or "" if it may."""
    if not password:
        return "the password is empty"
    if len(password) < MIN_LENGTH:
        return f"the password is too short: use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password is too long: use at most {MAX_LENGTH} characters"
    return ""


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int,
            length: int = HASH_BYTES) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAXMEM_BYTES,
                          dklen=length)


@functools.cache
def _dummy() -> tuple[bytes, int, int, int]:
    return secrets.token_bytes(SALT_BYTES), SCRYPT_N, SCRYPT_R, SCRYPT_P


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME or not all(x.isdigit() for x in parts[1:4]):
        return None
    n, r, p = (int(x) for x in parts[1:4])
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
            and 128 * n * r <= MAXMEM_BYTES // 2):
        return None
    try:
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(
            parts[5], validate=True)
    except ValueError:
        return None
    return (n, r, p, salt, digest) if salt and 16 <= len(digest) <= 64 else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
