"""The central service's config: ``[central]`` (where it listens, where its store is) and
``[policy]`` (how the store judges time), from one TOML file.

Every problem is reported at once, in the agent config's words:
``FILE: [section] key: expected ..., got ...`` (the helpers are monitord.schema's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, PlainValidator

from monitord.central.notify.settings import SECTIONS as NOTIFY_SECTIONS
from monitord.central.notify.settings import Notifications, load_notifications
from monitord.errors import ConfigError
from monitord.loader import Loader, check_keys, section
from monitord.net import redact_url
from monitord.schema import (
    AbsolutePath,
    Duration,
    PolicyConfig,
    StrictModel,
    found,
)
from monitord.store import backends
from monitord.store.policy import Policy
from monitord.store.protocol import Store

DEFAULT_PATH = "/etc/monitord/central.toml"
ENV_VAR = "MONITORD_CENTRAL_CONFIG"
SQLITE_PREFIX = "sqlite://"
POSTGRES_SCHEMES = ("postgresql", "postgres")
EXAMPLE_URL = '"sqlite:///var/lib/monitord-central/central.db"'
EXAMPLE_PG_URL = '"postgresql://monitord@127.0.0.1:5432/monitord"'


class Address(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _address(value: object) -> Address:
    form = 'expected "HOST:PORT" like "127.0.0.1:8460" or "[::1]:8460"'
    if not isinstance(value, str):
        raise ValueError(form)
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    bracketed = value.startswith("[")
    if not sep or not host or (":" in host and not bracketed) or not port.isdigit():
        raise ValueError(form)
    if not 1 <= int(port) <= 65535:
        raise ValueError("expected a port from 1 to 65535")
    return Address(host, int(port))


Listen = Annotated[Address, PlainValidator(_address)]


def _public_url(value: str) -> str:
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.hostname
                  or parts.query or parts.fragment):
        raise ValueError('expected the URL people reach the service at, like '
                         '"https://central.example", or "" for none')
    return value.rstrip("/")


PublicUrl = Annotated[str, AfterValidator(_public_url)]


class CentralSection(StrictModel):
    listen: Listen = Address("127.0.0.1", 8460)
    store_url: str = "sqlite:///var/lib/monitord-central/central.db"
    store_password_file: AbsolutePath = ""     # PostgreSQL only; "" = none (or in the URL)
    max_body_bytes: int = Field(default=1048576, ge=1024, le=104857600)
    sweep_every: Duration = 30.0
    console_session: Duration = 43200.0   # how long a web console sign-in lasts
    public_url: PublicUrl = ""    # where people reach it: links in notifications


@dataclass(frozen=True)
class CentralConfig:
    central: CentralSection
    policy: PolicyConfig    # the agent's [policy] too: the same keys mean the same there
    path: Path | None = None
    notify: Notifications = field(default_factory=Notifications)   # [mail], [[channel]]...

    def listening_on(self, listen: str) -> CentralConfig:
        """This config with another listen address (``--listen``); ConfigError if bad."""
        try:
            address = _address(listen)
        except ValueError as e:
            raise ConfigError([f"--listen: {e}, got {found(listen)}"]) from None
        return replace(self, central=self.central.model_copy(update={"listen": address}))

    @property
    def store_backend(self) -> Literal["sqlite", "postgres"]:
        return "sqlite" if self.central.store_url.startswith(SQLITE_PREFIX) else "postgres"

    @property
    def store_name(self) -> str:
        """The store for log lines and messages: never its password."""
        return redact_url(self.central.store_url)

    @property
    def store_policy(self) -> Policy:
        return Policy.from_config(self.policy)

    async def open_store(self) -> Store:
        """The store ``store_url`` names, opened and migrated."""
        return await backends.open_store(self.central.store_url, self.store_policy,
                                         self.central.store_password_file)

    async def migrate(self) -> str:
        """Bring the store's schema up to date; what was done, in one line."""
        return await backends.migrate(self.central.store_url, self.store_policy,
                                      self.central.store_password_file)

    @property
    def sqlite_path(self) -> Path:
        if self.store_backend != "sqlite":
            raise ValueError(f"the store is not SQLite but {self.store_name}")
        path = backends.sqlite_path(self.central.store_url)
        assert path is not None       # store_backend said sqlite
        return path


def default_path() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_PATH


def load_central_config(path: str | Path) -> CentralConfig:
    """Load and validate ``path``; raise ConfigError listing every problem."""
    main = Path(path)
    loader = Loader(main)
    data = loader.read(main)
    if data is None:
        raise ConfigError(loader.problems)
    check_keys(loader, main, data, {"central", "policy", *NOTIFY_SECTIONS})
    central = section(loader, main, data, "central", CentralSection)
    policy = section(loader, main, data, "policy", PolicyConfig)
    notify = load_notifications(loader, main, data)
    raw = data.get("central")
    url = raw.get("store_url") if isinstance(raw, dict) else None
    if isinstance(url, str) and _store_url_problem(url):
        loader.fail(main, f"[central] store_url: {_store_url_problem(url)}")
    elif central is not None and central.store_password_file:
        if not central.store_url.startswith(POSTGRES_SCHEMES):
            loader.fail(main, "[central] store_password_file: only a PostgreSQL store_url "
                              f"takes a password, like {EXAMPLE_PG_URL}")
        elif urlsplit(central.store_url).password is not None:
            loader.fail(main, "[central] store_password_file: the store_url has a password "
                              "already; keep it in one place")
    if loader.problems:
        raise ConfigError(loader.problems)
    return CentralConfig(central, policy, main, notify)


def _store_url_problem(url: str) -> str:
    """What is wrong with ``url``, or "". Never echoes a URL that may carry a password."""
    scheme, sep, rest = url.partition("://")
    if scheme in POSTGRES_SCHEMES and sep:
        return _postgres_url_problem(url)
    if scheme != "sqlite" or not sep:
        got = f'a "{scheme}://" URL' if sep else found(redact_url(url))
        return (f'expected "sqlite:///PATH" like {EXAMPLE_URL} or '
                f'"postgresql://USER@HOST:PORT/DATABASE", got {got}')
    if not rest.startswith("/"):
        return f'expected an absolute path after "sqlite://", like {EXAMPLE_URL}'
    return ""


def _postgres_url_problem(url: str) -> str:
    form = f'in "postgresql://USER@HOST:PORT/DATABASE" like {EXAMPLE_PG_URL}'
    parts = urlsplit(url)
    try:
        parts.port    # noqa: B018 -- parsing it is the check
    except ValueError:
        return f"expected a port from 1 to 65535 {form}"
    if not parts.path.strip("/"):
        return f"expected a database name {form}"
    return ""
