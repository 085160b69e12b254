"""The readers without a server: nginx's lexing and includes, names we do not trust,
pool files, and the names of generated checks."""

from __future__ import annotations

import pytest

from monitord.discover.checks import generate
from monitord.discover.model import Backend, Discovery, Pool, Site
from monitord.discover.names import check_base, why_not_watched
from monitord.discover.nginx import sites_from_dump
from monitord.discover.nginxconf import NginxConfigError, parse_file
from monitord.discover.phpfpm import parse_pool_file
from monitord.discover.rules import Sites

DUMP = """nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
# configuration file /etc/nginx/nginx.conf:
pid /run/nginx.pid;
http {
    include conf.d/*.conf;
}

# configuration file /etc/nginx/conf.d/b.conf:
server { listen 8080 ssl; server_name "b.example" 'B2.example.'; # a comment
         location / { fastcgi_pass 127.0.0.1:9000; } }

# configuration file /etc/nginx/conf.d/a.conf:
server { listen [::]:80; server_name a.example$1 .dot.example; return 302 /x; }
server { server_name "bad name" evil.example;x-ignored on; }
"""


def test_quotes_comments_and_escapes_are_read_as_nginx_reads_them() -> None:
    [directive] = parse_file('a "b c" \'d;e\' f\\;g h#i; # gone\n', "f")
    assert (directive.name, directive.args) == ("a", ["b c", "d;e", "f\\;g", "h#i"])


@pytest.mark.parametrize("text", ["a {", "}", "a 'b;", "a b"])
def test_a_file_nginx_would_not_read_is_an_error(text: str) -> None:
    with pytest.raises(NginxConfigError):
        parse_file(text, "f")


def test_includes_follow_nginx_order_and_names_are_validated() -> None:
    found = sites_from_dump(DUMP)
    assert [(s.name, s.aliases, s.address, s.port, s.tls) for s in found.sites] == [
        ("dot.example", (), "::1", 80, False),
        ("evil.example", (), "127.0.0.1", 80, False),
        ("b.example", ("b2.example",), "127.0.0.1", 8080, True),
    ]
    assert found.sites[0].redirect_status == 302
    assert found.sites[2].backends == (Backend("php-fpm", "127.0.0.1:9000"),)
    assert {s.name: s.reason for s in found.skipped} == {
        "a.example$1": "a name made of variables", "bad name": "not a valid host name"}


@pytest.mark.parametrize("name", ["", "_", "~^x$", "*.a.example", "a.*", "a b", "a/b",
                                  "a\"b", "-a.example", "a" * 64 + ".example"])
def test_names_that_cannot_be_asked_for_are_refused(name: str) -> None:
    assert why_not_watched(name)


def test_a_long_name_makes_a_stable_valid_check_name() -> None:
    name = ".".join(["label"] * 30) + ".example"
    assert check_base(name) == check_base(name)
    assert len(check_base(name)) <= 90 and check_base(name) != check_base(name + "x")


def test_pool_files_give_each_pool_its_listen_address() -> None:
    pools = parse_pool_file("[global]\npid = x\n[www]\nlisten = /run/php/$pool.sock ; c\n"
                            "pm = ondemand\n[api]\nlisten = 9001\n", "/p.conf")
    assert [(p.name, p.listen, p.ondemand) for p in pools] == [
        ("www", "unix:/run/php/www.sock", True), ("api", "127.0.0.1:9001", False)]


def test_check_names_are_stable_and_a_taken_name_skips_the_site() -> None:
    site = Site("nginx", "shop.example", (), "127.0.0.1", 443, True,
                backends=(Backend("php-fpm", "unix:/s"),))
    found = Discovery(sites=[site], pools=[Pool("www", "unix:/s")],
                      servers={"nginx": "/run/nginx.pid"})
    sites = Sites.model_validate({"discover": ["nginx"]})
    names = [c["name"] for c in generate(found, sites, set()).checks]
    assert names == ["nginx-server", "nginx-config", "php-fpm-pool-www",
                     "shop.example-https", "shop.example-cert"]
    taken = generate(found, sites, {"shop.example-https"})
    assert [s.reason for s in taken.skipped] == [
        'its check name "shop.example-https" is taken by another check']
