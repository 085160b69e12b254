"""Real mail servers on 127.0.0.1 for the mail and tls probe tests: aiosmtpd (SMTP with
STARTTLS and AUTH) on the test's loop, and Dovecot (IMAP, POP3) as a foreground process
with its whole configuration in a temporary directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.probes.readings import wait_for
from tests.probes.servers import Identity

MAIL_USER, MAIL_PASSWORD = "alice", "correct horse"


class Accept:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == MAIL_USER.encode()
          and auth_data.password == MAIL_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # True: no reply is sent


@contextlib.asynccontextmanager
async def serve_smtp(
    identity: Identity | None = None, implicit: bool = False, handler: Any = None
) -> AsyncIterator[int]:
    """aiosmtpd on 127.0.0.1 (STARTTLS with ``identity``, or TLS from the first byte when
    ``implicit``), with AUTH PLAIN/LOGIN for MAIL_USER; yields its port. ``handler``
    (aiosmtpd's) gets the mail; by default it is accepted and dropped."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    context = identity.server_context() if identity is not None else None
    loop = asyncio.get_running_loop()

    sessions: list[SMTP] = []

    def factory() -> SMTP:
        session = SMTP(handler or Accept(), hostname="mail.example.test",
                       ident="monitord test ESMTP",
                       tls_context=None if implicit else context,
                       authenticator=_authenticator, auth_require_tls=False)
        sessions.append(session)
        return session

    server = await loop.create_server(factory, "127.0.0.1", 0,
                                      ssl=context if implicit else None)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for session in sessions:  # Python 3.11 has no Server.close_clients()
            if session.transport is not None:
                session.transport.close()
        await server.wait_closed()


# --- Dovecot ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dovecot:
    imap: int
    imaps: int
    pop3: int
    pop3s: int
    password_file: Path
    wrong_password_file: Path


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


DOVECOT_CONF = """\
protocols = imap pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = monitord-test-{imap}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"""


@contextlib.contextmanager
def run_dovecot(identity: Identity) -> Iterator[Dovecot]:
    """Dovecot in the foreground (``dovecot -F -c``) on four free ports, one passwd-file
    user; the directory is under /tmp (mode 0755) because its mail processes run as
    nobody, who cannot enter pytest's private tmp_path."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        unavailable("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    root = Path(tempfile.mkdtemp(prefix="monitord-dovecot-"))
    root.chmod(0o755)
    (root / "mail").mkdir(mode=0o777)
    (root / "mail").chmod(0o777)
    imap, imaps, pop3, pop3s = free_ports(4)
    (root / "passwd").write_text(f"{MAIL_USER}:{{PLAIN}}{MAIL_PASSWORD}::::::\n")
    conf = root / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(root=root, cert=identity.cert, key=identity.key,
                                        imap=imap, imaps=imaps, pop3=pop3, pop3s=pop3s))
    good, wrong = root / "password", root / "wrong-password"
    good.write_text(MAIL_PASSWORD + "\n")
    wrong.write_text("not the password\n")
    process = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        wait_for(lambda: process.poll() is not None or all(
            listening(p) for p in (imap, imaps, pop3, pop3s)), "dovecot to listen")
        if process.poll() is not None:
            log = root / "dovecot.log"
            text = log.read_text() if log.exists() else ""
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"dovecot exited: {stderr} {text}")
        yield Dovecot(imap, imaps, pop3, pop3s, good, wrong)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(root, ignore_errors=True)


def client_trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))
