"""Console sessions and anti-forgery tokens, signed, and ended on the server.

A session is a cookie ``NAME|EXPIRES|MAC``: the person, when it ends (Unix seconds), and
an HMAC-SHA256 over both, over a fingerprint of the person's current password hash and
over the person's session generation (a counter in the store). Every request checks the
MAC against the store's current hash and generation, so several central processes behind
one address accept each other's cookies (the key is the store's shared secret), changing a
password ends every session made with the old one (the fingerprint no longer matches), and
signing out counts the generation up, which ends the person's sessions on the server: a
copy of the cookie is worth nothing afterwards, in any browser. Their lifetime is bounded
too ([central] console_session).

The cookie is ``__Host-monitord_session``: Secure, Path=/, no Domain, so no other site
on a shared domain can set or shadow it. Browsers keep Secure cookies only from HTTPS
pages and from loopback (``localhost``, 127.0.0.1): the console is meant to be reached
over HTTPS (a TLS proxy in front of it), or on loopback.

Every form a signed-in person posts carries ``csrf`` = HMAC(key, "csrf", session cookie):
a page of another site cannot read it, so it cannot make a browser post a valid form.
The login form, before there is a session, uses a signed double submit: a random cookie
(``monitord_login``, SameSite=Strict) and the form field HMAC(key, "login", that cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from monitord.events import is_name

SESSION_COOKIE = "__Host-monitord_session"
LOGIN_COOKIE = "monitord_login"
CSRF_FIELD = "csrf"
SECRET_NAME = "console-session"
_MAC = re.compile(r"^[0-9a-f]{64}$")
_LOGIN_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MAX_EXPIRY_DIGITS = 12


@dataclass(frozen=True)
class Session:
    """A signed-in person, and the cookie value their forms' tokens are bound to."""

    name: str
    expires: int
    cookie: str


def fingerprint(password_hash: str) -> str:
    """Changes whenever the password is set again (the stored hash has a new salt)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()


def make_session(key: bytes, name: str, expires: int, password_hash: str,
                 generation: int) -> Session:
    mac = _mac(key, "session", name, str(expires), fingerprint(password_hash),
               str(generation))
    return Session(name, expires, f"{name}|{expires}|{mac}")


def claimed(cookie: str | None) -> tuple[str, int] | None:
    """(name, expiry) a cookie claims, if it has the shape of ours; not yet verified."""
    parts = (cookie or "").split("|")
    if len(parts) != 3:
        return None
    name, expires, mac = parts
    if (not is_name(name) or not expires.isascii() or not expires.isdigit()
            or len(expires) > _MAX_EXPIRY_DIGITS or not _MAC.fullmatch(mac)):
        return None
    return name, int(expires)


def verify_session(key: bytes, cookie: str, now: float, password_hash: str | None,
                   generation: int) -> Session | None:
    """The session ``cookie`` stands for, if it is ours, unexpired, of this password, and
    of the person's current session generation (not signed out since)."""
    shape = claimed(cookie)
    if shape is None or password_hash is None:
        return None
    name, expires = shape
    if expires <= now:
        return None
    expected = make_session(key, name, expires, password_hash, generation)
    return expected if hmac.compare_digest(expected.cookie, cookie) else None


def csrf_token(key: bytes, session: Session) -> str:
    return _mac(key, "csrf", session.cookie)


def login_token(key: bytes, nonce: str) -> str:
    return _mac(key, "login", nonce)


def valid_nonce(nonce: str | None) -> bool:
    return nonce is not None and _LOGIN_NONCE.fullmatch(nonce) is not None


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()
