"""The admin's site rules (``[sites]``): what discovery reads, and what every discovered
site gets. Validated with the same vocabulary as every check (``monitord.schema``)."""

from __future__ import annotations

import fnmatch
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitord.model import Priority
from monitord.probes.base import HealStep
from monitord.schema import (
    AbsolutePath,
    Duration,
    OptionalPriority,
    PriorityField,
    Regex,
    StrictModel,
    Threshold,
    ca_file_needs_verify,
)

# A PHP fatal error or a failed database connection, as PHP, WordPress, Drupal, Joomla,
# Laravel and PDO print them in a page that may still be a 200.
ERROR_PAGE = (r"(?i)(<b>(Fatal|Parse) error</b>|PHP (Fatal|Parse) error|Uncaught "
              r"(Error|Exception)|Error establishing a database connection|"
              r"SQLSTATE\[(HY000|08006|2002)\]|Database connection (error|failed)|"
              r"Too many connections)")


class SiteRules(StrictModel):
    """The keys each site's checks take; ``[[sites.override]]`` may set any of them."""

    every: Duration = 60.0
    timeout: Duration = 10.0
    fail_after: int = Field(default=3, ge=1, le=100)
    retry_every: Duration = 2.0
    recover_after: int = Field(default=2, ge=1, le=100)
    priority: PriorityField = Priority.P1              # the site is down
    script_error_priority: PriorityField = Priority.P3  # its own error page: code or database
    path: str = Field(default="/", pattern=r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")
    expect_status: list[int] = [200, 301, 302, 401, 403]
    error_page: Regex | None = Field(default_factory=lambda: _compiled(ERROR_PAGE))
    verify_tls: bool = True
    ca_file: AbsolutePath = ""
    warn: dict[str, Threshold] = {}
    crit: dict[str, Threshold] = {}
    heal: list[HealStep] = []
    certificate: bool = True         # a tls check of each TLS site's certificate
    certificate_every: Duration = 21600.0
    certificate_priority: PriorityField = Priority.P2
    certificate_warning_priority: OptionalPriority = Priority.P3

    @field_validator("error_page", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value   # "" turns the body rule off

    @model_validator(mode="after")
    def _ca_file_verifies(self) -> SiteRules:
        ca_file_needs_verify(self.ca_file, self.verify_tls)
        return self


SITE_KEYS = frozenset(SiteRules.model_fields)


class NginxSource(StrictModel):
    # nginx -T as nginx runs: add "-c", "/etc/nginx/nginx.conf" (or "-p" and "-c") when the
    # master was started with them. Its -t form tests the config for nginx's config check.
    command: list[str] = Field(default=["/usr/sbin/nginx", "-T"], min_length=1)


class ApacheSource(StrictModel):
    command: list[str] = Field(default=["/usr/sbin/apache2ctl", "-S"], min_length=1)


class PhpFpmSource(StrictModel):
    pool_files: list[str] = ["/etc/php/*/fpm/pool.d/*.conf"]
    pool_heal: list[HealStep] = []


class SlowRules(StrictModel):
    """One P2 "server slow": a share of sites much slower than their own baseline, or the
    machine past a bound."""

    share: float = Field(default=0.5, gt=0, le=1)
    factor: float = Field(default=3.0, ge=1)
    min_seconds: Duration = 0.5
    min_sites: int = Field(default=5, ge=1)
    baseline: Duration = 3600.0
    load_per_cpu: float = Field(default=4.0, gt=0)
    iowait_ratio: float = Field(default=0.5, gt=0, le=1)
    memory_available_ratio: float = Field(default=0.05, ge=0, lt=1)
    judge_every: Duration = 30.0
    priority: PriorityField = Priority.P2


class DownRules(StrictModel):
    """Many sites down at once with no known parent failing: one incident, not N."""

    min_sites: int = Field(default=5, ge=2)
    share: float = Field(default=0.2, gt=0, le=1)
    gather: Duration = 10.0
    priority: PriorityField = Priority.P1


class Sites(SiteRules):
    """``[sites]``: what discovery reads, and the site rules beneath it."""

    discover: list[Literal["nginx", "apache2"]] = []
    exclude: list[str] = []
    server_check: str = ""
    server_heal: list[HealStep] = []
    rescan_every: Duration = 300.0
    poll_every: Duration = 5.0
    discover_timeout: Duration = 20.0
    nginx: NginxSource = NginxSource()
    apache2: ApacheSource = ApacheSource()
    php_fpm: PhpFpmSource = PhpFpmSource()
    slow: SlowRules = SlowRules()
    down: DownRules = DownRules()
    override: list[Override] = []

    @property
    def enabled(self) -> bool:
        return bool(self.discover)

    def excluded(self, name: str) -> str:
        """The ``exclude`` glob that matches ``name``, or ""."""
        return next((g for g in self.exclude if fnmatch.fnmatchcase(name, g)), "")

    def rules_for(self, name: str) -> SiteRules:
        """The rules of site ``name``: [sites], then each matching override in order."""
        changes: dict[str, object] = {}
        for override in self.override:
            if any(fnmatch.fnmatchcase(name, g) for g in override.match):
                changes.update(override.model_dump(exclude={"match"}, exclude_unset=True))
        if not changes:
            return self
        base = {k: getattr(self, k) for k in SITE_KEYS}
        return SiteRules.model_construct(**{**base, **changes})


class Override(StrictModel):
    """``[[sites.override]]``: the sites whose name matches one of ``match`` (globs)."""

    match: list[str] = Field(min_length=1)
    every: Duration | None = None
    timeout: Duration | None = None
    fail_after: int | None = Field(default=None, ge=1, le=100)
    retry_every: Duration | None = None
    recover_after: int | None = Field(default=None, ge=1, le=100)
    priority: PriorityField | None = None
    script_error_priority: PriorityField | None = None
    path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")
    expect_status: list[int] | None = None
    error_page: Regex | None = None
    verify_tls: bool | None = None
    ca_file: AbsolutePath | None = None
    warn: dict[str, Threshold] | None = None
    crit: dict[str, Threshold] | None = None
    heal: list[HealStep] | None = None
    certificate: bool | None = None
    certificate_every: Duration | None = None
    certificate_priority: PriorityField | None = None
    certificate_warning_priority: OptionalPriority = None

    @field_validator("error_page", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


Sites.model_rebuild()
