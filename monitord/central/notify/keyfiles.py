"""The secret files the notifier reads at each send, in a thread, never waiting on a file
that is not a regular one.

A config's secret files (``[mail] password_file``, a webhook's ``secret_file`` and
``header_files``, a PagerDuty channel's ``routing_key_file``) are read as the admin wrote
them, symbolic links followed (``read_secret``), but opened without waiting
(``O_NONBLOCK``) and refused unless they are regular files: a FIFO or a device named by
mistake fails its channel with one line and holds neither the notifier nor a thread.

A person's PagerDuty contact is typed by any console or command-line user, and the central
service reads the file it names at every send: so it may name only a file directly in the
one directory the admin set aside for them (``[notify] pagerduty_keys_dir``), never any
other file the service can read.

- When a contact is added (``problem``): its address is ``DIR/NAME`` with ``DIR`` that
  directory as configured and ``NAME`` a plain file name, and the file is a regular file
  there now.
- At each send (``read_key``, run in a thread): the same rule; the file is opened
  relative to the directory, without following a symbolic link (``O_NOFOLLOW``: a link
  put there later is refused, wherever it points) and without waiting (``O_NONBLOCK``: a
  FIFO cannot hold the notifier), checked to be a regular file, and only its first
  ``MAX_SECRET_BYTES`` + 1 bytes are read. The key is registered as a secret.
"""

from __future__ import annotations

import os
import posixpath
import stat

from monitord.errors import SecretError
from monitord.schema import MAX_SECRET_BYTES, secret_line

KEY = "pagerduty contact"


def read_secret(path: str, key: str, *, required: bool = False) -> str:
    """The first line of the config's secret file ``path`` (``key`` names it in errors),
    registered as a secret (blocking: call it in a thread). SecretError, one line naming
    ``key`` and the file, never its content, if it is not a regular file of one line."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError) as e:     # ValueError: a NUL in the path
        raise SecretError(f"cannot read {key} {path}: "
                          f"{getattr(e, 'strerror', None) or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecretError(f"cannot read {key} {path}: not a regular file; expected a "
                              "file whose first line is the secret")
        raw = os.read(fd, MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise SecretError(f"cannot read {key} {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    return secret_line(raw, path, key, required=required)


def file_name(address: str, keys_dir: str) -> str:
    """The name of ``address``'s file in ``keys_dir``; SecretError (one line, saying where
    key files go) when it names a file anywhere else."""
    folder, name = posixpath.split(address)
    if (not posixpath.isabs(address) or name in ("", ".", "..")
            or posixpath.normpath(folder) != posixpath.normpath(keys_dir)):
        raise SecretError(f"{KEY} {address[:200]!r}: expected a file directly in {keys_dir} "
                          "([notify] pagerduty_keys_dir), like "
                          f"{posixpath.join(keys_dir, 'team.key')}")
    return name


def problem(address: str, keys_dir: str) -> str:
    """What keeps ``address`` from being a PagerDuty contact now, or "" (for add time)."""
    try:
        os.close(_open(address, keys_dir))
    except SecretError as e:
        return str(e)
    return ""


def read_key(address: str, keys_dir: str) -> str:
    """The integration key: the first line of the file (blocking: call it in a thread)."""
    fd = _open(address, keys_dir)
    try:
        raw = os.read(fd, MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise SecretError(f"cannot read {KEY} {address}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    return secret_line(raw, address, KEY, required=True)


def _open(address: str, keys_dir: str) -> int:
    """A descriptor of the regular file ``address`` names in ``keys_dir``."""
    name = file_name(address, keys_dir)
    try:
        folder = os.open(keys_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SecretError(f"cannot open {keys_dir} ([notify] pagerduty_keys_dir): "
                          f"{e.strerror or e}") from None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=folder)
    except (OSError, ValueError) as e:     # ValueError: a NUL in the name
        why = "a symbolic link" if os.path.islink(address) else (
            getattr(e, "strerror", None) or str(e))
        raise SecretError(f"cannot read {KEY} {address}: {why}; expected a regular file "
                          f"in {keys_dir}") from None
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SecretError(f"{KEY} {address}: not a regular file; expected one in {keys_dir}")
    return fd
