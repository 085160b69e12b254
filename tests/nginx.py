"""A real nginx of the test's own: its own prefix, config and a free port on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil

from tests.conftest import unavailable

NGINX = "/usr/sbin/nginx"
POLL_SECONDS = 0.05

CONFIG = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
    {vhosts}
    {extra}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx under ``prefix``; ``broken=True`` writes a config that nginx refuses."""

    def __init__(self, prefix: Path, port: int | None = None, broken: bool = False,
                 vhosts: int = 0) -> None:
        if shutil.which(NGINX) is None and not Path(NGINX).exists():
            unavailable("nginx is not installed (Debian package nginx)")
        self.prefix = prefix
        self.port = port or free_port()
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.conf = prefix / "nginx.conf"
        self.sites = [f"site{i}.example" for i in range(vhosts)]
        self.write(broken)

    def write(self, broken: bool = False) -> None:
        """(Re)write the config: name-based vhosts, and a directive nginx refuses if
        ``broken``."""
        extra = "this_is_not_a_directive on;" if broken else ""
        vhosts = "\n    ".join(
            f'server {{ listen 127.0.0.1:{self.port}; server_name {name}; '
            f'location / {{ return 200 "{name}\\n"; }} }}' for name in self.sites)
        self.conf.write_text(CONFIG.format(prefix=self.prefix, port=self.port, extra=extra,
                                           vhosts=vhosts))

    @property
    def argv(self) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.conf)]

    def start(self) -> None:
        subprocess.run(self.argv, check=True, capture_output=True, timeout=30)
        self.wait_until(self.answers)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def processes(self) -> list[psutil.Process]:
        """The master (found by its pidfile) and its workers."""
        try:
            master = psutil.Process(int((self.prefix / "nginx.pid").read_text()))
        except (OSError, ValueError, psutil.Error):
            return []
        if master.status() == psutil.STATUS_ZOMBIE:
            return []
        return [master, *master.children()]

    def kill(self, wait_down: bool = True) -> None:
        """SIGKILL to the master and its workers, as an OOM killer or a crash would; then
        wait until they are gone (a zombie nobody reaps counts as gone) and, if
        ``wait_down``, until nothing answers (a daemon may bring it back sooner)."""
        procs = self.processes()
        for proc in procs:
            proc.kill()
        self.wait_until(lambda: all(_gone(p) for p in procs))
        if wait_down:
            self.wait_until(lambda: not self.answers())

    def stop(self) -> None:
        if self.processes():
            self.kill()

    @staticmethod
    def wait_until(condition: object, limit: float = 20.0) -> None:
        deadline = time.monotonic() + limit
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {condition}")
            time.sleep(POLL_SECONDS)


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
