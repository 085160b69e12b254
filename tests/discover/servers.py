"""Real web servers of the tests' own, on 127.0.0.1 free ports: nginx with hundreds of
generated vhosts spread over includes (plain, TLS under a CA made here, redirects, a
default server, wildcard and regex names, PHP-FPM pools and an upstream), PHP-FPM
masters with one pool each, Apache httpd with name-based vhosts, and a slow-able
upstream."""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import unavailable
from tests.nginx import NGINX, free_port

PHP_FPM = "/usr/sbin/php-fpm8.2"
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
POLL_SECONDS = 0.05


def wait_until(condition: object, what: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(POLL_SECONDS)


class Upstream:
    """An HTTP server in a thread answering "ok" after ``delay`` seconds."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.status = 200
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(owner.delay)
                body = f"ok {self.headers.get('Host', '')}\n".encode()
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 1024     # the default 5 drops nginx's burst of connections
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass                      # a client that timed out and left is no error

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CA:
    """A certificate authority of the test's own, and one server certificate for many
    names."""

    def __init__(self, directory: Path, names: list[str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitord test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(days=1))
              .not_valid_after(now + dt.timedelta(days=90))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=60))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(pem))
        self.cert = directory / "server.pem"
        self.cert.write_bytes(cert.public_bytes(pem))
        self.key = directory / "server.key"
        self.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))


class PhpPool:
    """One php-fpm master with one pool ``name`` on a unix socket (pm static, 1 worker)."""

    def __init__(self, prefix: Path, name: str) -> None:
        if not Path(PHP_FPM).exists():
            unavailable("php-fpm is not installed (Debian package php8.2-fpm)")
        self.prefix = prefix
        self.name = name
        prefix.mkdir(parents=True, exist_ok=True)
        self.socket = prefix / f"{name}.sock"
        self.pid = prefix / "php-fpm.pid"
        self.pool_file = prefix / "pool.d" / f"{name}.conf"
        self.pool_file.parent.mkdir(exist_ok=True)
        self.pool_file.write_text(
            f"[{name}]\nuser = root\ngroup = root\nlisten = {self.socket}\n"
            "listen.mode = 0666\npm = static\npm.max_children = 1\n")
        self.conf = prefix / "php-fpm.conf"
        self.conf.write_text(f"[global]\npid = {self.pid}\nerror_log = {prefix}/error.log\n"
                             f"daemonize = yes\ninclude = {self.pool_file}\n")

    def start(self) -> None:
        subprocess.run([PHP_FPM, "-R", "-y", str(self.conf), "-p", str(self.prefix)],
                       check=True, capture_output=True, timeout=30)
        wait_until(self.socket.exists, f"php-fpm pool {self.name}'s socket")

    def stop(self) -> None:
        try:
            pid = int(self.pid.read_text())
        except (OSError, ValueError):
            return
        _signal(pid, signal.SIGQUIT)
        wait_until(lambda: not _alive(pid), f"php-fpm pool {self.name} to stop")


def _signal(pid: int, signum: signal.Signals) -> None:
    import os

    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def site(index: int) -> str:
    return f"site{index}.example"


def kind(index: int) -> str:
    """Every tenth site is TLS (with a plain server that redirects to it), the next two
    are PHP sites of pool a and b, the rest proxy to the upstream."""
    return {0: "tls", 1: "php-a", 2: "php-b"}.get(index % 10, "upstream")


class SiteNginx:
    """nginx with ``count`` vhosts in ``files`` included files (one of them includes a
    snippet inside its servers), plus a default server and wildcard and regex names."""

    def __init__(self, prefix: Path, count: int, upstream: Upstream,
                 pools: dict[str, PhpPool], files: int = 10) -> None:
        if shutil.which(NGINX) is None and not Path(NGINX).exists():
            unavailable("nginx is not installed (Debian package nginx)")
        self.prefix, self.count, self.files = prefix, count, files
        self.upstream, self.pools = upstream, pools
        self.port, self.tls_port = free_port(), free_port()
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        (prefix / "sites").mkdir(exist_ok=True)
        (prefix / "snippets").mkdir(exist_ok=True)
        self.docs = prefix / "www"
        self.docs.mkdir(exist_ok=True)
        (self.docs / "index.php").write_text('<?php echo "php ok ", $_SERVER["HTTP_HOST"];\n')
        self.ca = CA(prefix / "tls", [site(i) for i in range(count) if kind(i) == "tls"]
                     + ["new.example"])
        self.conf = prefix / "nginx.conf"
        self.extra: dict[str, str] = {}
        self.write()

    @property
    def argv(self) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.conf)]

    def write(self, broken: bool = False) -> None:
        (self.prefix / "snippets" / "php.conf").write_text(
            "include " + str(Path("/etc/nginx/fastcgi_params")) + ";\n"
            "fastcgi_param SCRIPT_FILENAME $document_root/index.php;\n")
        per_file = -(-self.count // self.files)
        for part in range(self.files):
            servers = [self.server(i) for i in range(part * per_file,
                                                     min(self.count, (part + 1) * per_file))]
            (self.prefix / "sites" / f"part{part:02d}.conf").write_text("\n".join(servers))
        for name, text in self.extra.items():
            (self.prefix / "sites" / f"{name}.conf").write_text(text)
        self.conf.write_text(self.main(broken))

    def main(self, broken: bool) -> str:
        p = self.prefix
        return f"""user root;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log;
events {{ worker_connections 512; }}
http {{
    access_log off;
    server_names_hash_bucket_size 128;
    server_names_hash_max_size 4096;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    ssl_certificate {self.ca.cert};
    ssl_certificate_key {self.ca.key};
    upstream app {{ server 127.0.0.1:{self.upstream.port}; }}
    server {{ listen 127.0.0.1:{self.port} default_server; server_name _; return 444; }}
    server {{ listen 127.0.0.1:{self.port}; server_name *.wild.example; return 200; }}
    server {{ listen 127.0.0.1:{self.port}; server_name ~^re\\d+\\.example$; return 200; }}
    include sites/*.conf;
    {"this_is_not_a_directive on;" if broken else ""}
}}
"""

    def server(self, index: int) -> str:
        name, kind_ = site(index), kind(index)
        head = f"server_name {name} www.{name};"
        if kind_ == "tls":
            return (f"server {{ listen 127.0.0.1:{self.port}; {head} "
                    f"return 301 https://{name}$request_uri; }}\n"
                    f"server {{ listen 127.0.0.1:{self.tls_port} ssl; {head} "
                    f"root {self.docs}; location / {{ proxy_pass http://app; }} }}")
        if kind_.startswith("php"):
            pool = self.pools[kind_[-1]]
            return (f"server {{ listen 127.0.0.1:{self.port}; {head} root {self.docs}; "
                    f"location / {{ include {self.prefix}/snippets/php.conf; "
                    f"fastcgi_pass unix:{pool.socket}; }} }}")
        return (f"server {{ listen 127.0.0.1:{self.port}; {head} root {self.docs}; "
                "location / { proxy_pass http://app; } }")

    def start(self) -> None:
        subprocess.run(self.argv, check=True, capture_output=True, timeout=30)
        wait_until(lambda: (self.prefix / "nginx.pid").exists(), "nginx's pid file")

    def reload(self) -> None:
        subprocess.run([*self.argv, "-s", "reload"], check=True, capture_output=True,
                       timeout=30)

    def stop(self) -> None:
        try:
            pid = int((self.prefix / "nginx.pid").read_text())
        except (OSError, ValueError):
            return
        _signal(pid, signal.SIGQUIT)
        wait_until(lambda: not _alive(pid), "nginx to stop")


class Apache:
    """Apache httpd (Debian's apache2) with its own config: name-based vhosts with
    aliases, one redirecting, and the catch-all first vhost without a ServerName."""

    def __init__(self, root: Path, docs: Path, names: list[str]) -> None:
        if not Path(APACHE).exists():
            unavailable("Apache is not installed (Debian package apache2)")
        self.root, self.port = root, free_port()
        (root / "run").mkdir(parents=True, exist_ok=True)
        (root / "sites").mkdir(exist_ok=True)
        docs.mkdir(parents=True, exist_ok=True)
        docs.chmod(0o755)
        (docs / "index.html").write_text("apache ok\n")
        (docs / "index.html").chmod(0o644)
        modules = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n"
                          for m in ("mpm_event", "authz_core", "alias", "dir"))
        vhosts = [f"<VirtualHost 127.0.0.1:{self.port}>\n  DocumentRoot {docs}\n"
                  "</VirtualHost>\n"]
        for i, name in enumerate(names):
            redirect = f"  Redirect permanent / https://{name}/\n" if i == 1 else ""
            vhosts.append(f"<VirtualHost 127.0.0.1:{self.port}>\n  ServerName {name}\n"
                          f"  ServerAlias www.{name} alias{i}.example *.wild{i}.example\n"
                          f"  DocumentRoot {docs}\n{redirect}</VirtualHost>\n")
        for i, text in enumerate(vhosts):
            (root / "sites" / f"{i:03d}.conf").write_text(text)
        self.conf = root / "apache2.conf"
        self.conf.write_text(
            f"ServerRoot {root}\nDefaultRuntimeDir {root}/run\nPidFile {root}/apache2.pid\n"
            f"{modules}Listen 127.0.0.1:{self.port}\nUser www-data\nGroup www-data\n"
            f"ServerName localhost\nErrorLog {root}/error.log\n"
            f"<Directory {docs}>\n  Require all granted\n</Directory>\n"
            f"IncludeOptional {root}/sites/*.conf\n")

    @property
    def argv(self) -> list[str]:
        return [APACHE, "-d", str(self.root), "-f", str(self.conf)]

    def start(self) -> None:
        subprocess.run([*self.argv, "-k", "start"], check=True, capture_output=True,
                       timeout=30)
        wait_until(lambda: (self.root / "apache2.pid").exists(), "Apache's pid file")

    def stop(self) -> None:
        subprocess.run([*self.argv, "-k", "stop"], capture_output=True, timeout=30)
        wait_until(lambda: not (self.root / "apache2.pid").exists(), "Apache to stop")
