"""Console passwords: scrypt hashes that describe themselves, checked in constant time,
and the same work done for a name that has no password."""

from __future__ import annotations

import base64

import pytest

from monitord.central import passwords
from monitord.central.passwords import hash_password, password_problem, verify_password

GOOD = "correct horse battery"


def test_hash_is_salted_scrypt_with_its_parameters() -> None:
    first, second = hash_password(GOOD), hash_password(GOOD)
    assert first != second                                   # a new salt each time
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "32768", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert GOOD not in first


def test_right_password_matches_and_wrong_ones_do_not() -> None:
    stored = hash_password(GOOD)
    assert verify_password(GOOD, stored)
    assert not verify_password(GOOD + " ", stored)
    assert not verify_password("", stored)


@pytest.mark.parametrize("stored", [
    None, "", "plain-text-password", "scrypt$32768$8$1$c2FsdA==",
    "scrypt$3$8$1$c2FsdHNhbHRzYWx0$" + "A" * 44,            # n not a power of two
    "scrypt$2097152$8$1$c2FsdHNhbHRzYWx0$" + "A" * 44,      # asks for too much memory
    "scrypt$32768$8$1$!!!$" + "A" * 44,                     # not base64
    "bcrypt$32768$8$1$c2FsdHNhbHRzYWx0$" + "A" * 44,
])
def test_missing_or_malformed_hash_is_a_no(stored: str | None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = passwords._scrypt

    def counted(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)   # type: ignore[arg-type]

    monkeypatch.setattr(passwords, "_scrypt", counted)
    assert not verify_password(GOOD, stored)
    assert calls == [1]                # the same work as a real check: no timing tell


def test_hash_made_with_other_parameters_still_verifies() -> None:
    salt = b"0123456789abcdef"
    digest = passwords._scrypt(GOOD, salt, 2**14, 8, 1)
    stored = "$".join(["scrypt", str(2**14), "8", "1", base64.b64encode(salt).decode(),
                       base64.b64encode(digest).decode()])
    assert verify_password(GOOD, stored)


@pytest.mark.parametrize(("password", "problem"), [
    ("", "the password is empty"),
    ("a" * 11, "the password is too short: use at least 12 characters"),
    ("a" * 12, ""),
    ("a" * 1025, "the password is too long: use at most 1024 characters"),
])
def test_password_rules(password: str, problem: str) -> None:
    assert password_problem(password) == problem
