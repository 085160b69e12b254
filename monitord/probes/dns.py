"""One DNS query to one server: the response code, the answers, and latency.

dnspython's ``dns.asyncquery`` sends exactly one query to the server asked for; its
resolver is not used, because it adds search domains, retries and other servers.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from monitord import net
from monitord.durations import format_duration
from monitord.errors import ProbeError
from monitord.model import Observation
from monitord.probes.base import CheckBase, Expectation, ProbeContext, Regex

METRICS = {
    "response_seconds": "time from sending the query to the answer",
    "answer_records": "records of the asked type in the answer",
    "ttl_seconds": "lowest TTL of those records",
}
RecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"]
MAX_ANSWERS_SHOWN = 5
MAX_ANSWER_CHARS = 120
# The query gives up after this share of the check's timeout, so the result names the
# server that did not answer instead of a bare "timed out".


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["dns"]
    query: str = Field(min_length=1, max_length=253)
    record_type: RecordType = "A"
    server: str = "127.0.0.1"
    port: int = Field(default=53, ge=1, le=65535)
    tcp: bool = False
    recursion: bool = True
    expect_rcode: Literal["NOERROR", "NXDOMAIN"] = "NOERROR"
    expect: list[str] = []
    expect_matches: Regex | None = None

    @field_validator("server")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError('expected an IP address like "127.0.0.1"') from None

    @model_validator(mode="after")
    def _expect_fits_type(self) -> Config:
        if self.record_type in ("A", "AAAA"):
            version = 4 if self.record_type == "A" else 6
            for item in self.expect:
                if _ip_version(item) != version:
                    raise ValueError(f"expect: {item!r} is not an IPv{version} address "
                                     f"(record_type = {self.record_type!r})")
        return self

    def target(self) -> str:
        return f"DNS {net.host_port(self.server, self.port)}"

    def expectations(self) -> list[Expectation]:
        found = [Expectation("rcode", frozenset([self.expect_rcode]),
                             f"expected {self.expect_rcode}")]
        if self.expect:
            found.append(Expectation("answers_match", frozenset([True]),
                                     f"expected {', '.join(sorted(self.expect))}"))
        if self.expect_matches is not None:
            pattern = self.expect_matches.pattern
            found.append(Expectation("answers_matching", frozenset([True]),
                                     f"no answer matches {pattern!r}"))
        return found


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    import dns.asyncquery
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode

    query = dns.message.make_query(cfg.query, cfg.record_type)
    if not cfg.recursion:
        query.flags &= ~dns.flags.RD
    transport = "TCP" if cfg.tcp else "UDP"
    where = f"{net.host_port(cfg.server, cfg.port)} ({transport})"
    budget = ctx.budget()
    start = time.monotonic()
    try:
        if cfg.tcp:
            response = await dns.asyncquery.tcp(query, cfg.server, budget, cfg.port)
        else:
            response, _ = await dns.asyncquery.udp_with_fallback(
                query, cfg.server, budget, cfg.port, ignore_unexpected=True)
    except dns.exception.Timeout:
        raise ProbeError(f"no answer from {where} within "
                         f"{format_duration(time.monotonic() - start)}") from None
    except ConnectionRefusedError:
        raise ProbeError(f"nothing listens on {where}: connection refused") from None
    except OSError as e:
        raise ProbeError(f"cannot query {where}: {net.reason(e)}") from None
    except dns.exception.DNSException as e:
        raise ProbeError(f"bad answer from {where}: {str(e)[:MAX_ANSWER_CHARS]}") from None
    elapsed = time.monotonic() - start
    return _observe(cfg, response, dns.rcode.to_text(response.rcode()), where, elapsed)


def _observe(cfg: Config, response: Any, rcode: str, where: str, elapsed: float) -> Observation:
    records = [rrset for rrset in response.answer if _type_name(rrset.rdtype) == cfg.record_type]
    answers = sorted({_normal(cfg.record_type, _text(rdata)) for r in records for rdata in r})
    asked = f"{cfg.record_type} {cfg.query}"
    if rcode != "NOERROR":
        said = rcode
    elif answers:
        said = _shown(answers)
    else:
        said = f"no {cfg.record_type} records"
    obs = Observation(f"DNS {asked} from {where}: {said} in {elapsed * 1000:.0f} ms")
    obs.add("rcode", rcode)
    obs.add("response_seconds", round(elapsed, 6))
    obs.add("answer_records", len(answers))
    if records:
        obs.add("ttl_seconds", min(r.ttl for r in records))
    if cfg.expect:
        expected = {_normal(cfg.record_type, item) for item in cfg.expect}
        obs.add("answers_match", expected == set(answers))
    if cfg.expect_matches is not None:
        pattern = cfg.expect_matches
        obs.add("answers_matching", any(pattern.search(a) for a in answers))
    return obs


def _ip_version(text: str) -> int:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return 0


def _type_name(rdtype: Any) -> str:
    import dns.rdatatype

    return dns.rdatatype.to_text(rdtype)


def _text(rdata: Any) -> str:
    """TXT as its joined strings (without the quoting), anything else as zone-file text."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    return str(rdata.to_text())


def _normal(record_type: str, text: str) -> str:
    """One spelling per answer, so ``expect`` compares meaning: addresses compressed, names
    lower case without the final dot. TXT is compared exactly."""
    if record_type in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    if record_type == "TXT":
        return text
    return re.sub(r"\.(?=\s|$)", "", text.strip().lower())


def _shown(answers: list[str]) -> str:
    """The answers for the summary, bounded: the server's text is untrusted."""
    shown = ", ".join(a[:MAX_ANSWER_CHARS] for a in answers[:MAX_ANSWERS_SHOWN])
    more = len(answers) - MAX_ANSWERS_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
