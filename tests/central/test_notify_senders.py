"""The notification parts without a store: who hears which notice, the retry schedule,
and each sender's verdict on what its server answered (real servers on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitord.central.notify import addresses, mail, pagerduty, webhook
from monitord.central.notify.message import Message, Tools, contacts_session
from monitord.central.notify.notifier import MAX_RETRY_SECONDS, claim_limit, retry_delay
from monitord.central.notify.people import contact_channels, contact_sends
from monitord.central.notify.routing import recipients
from monitord.central.notify.settings import (
    ChannelConfig,
    EscalationSection,
    MailSection,
    Notifications,
)
from monitord.errors import SendError
from monitord.model import Priority
from monitord.store.people import (
    Contact,
    EscalationPolicy,
    Override,
    Person,
    PolicyStep,
    Roster,
    Schedule,
    Target,
)
from monitord.store.protocol import Incident, NoticeKind
from tests.central.receivers import mail_server, receiving
from tests.probes.mailservers import serve_smtp

T0 = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)
INCIDENT = Incident(id=7, key="web1/shop", host="web1", check="shop", priority="P1",
                    status="open", title="shop failing", summary="HTTP 502", opened_at=T0,
                    due_at=T0 + dt.timedelta(minutes=15), last_seen_at=T0, count=1)
MESSAGE = Message(notice_id=1, kind="opened", level=0, incident=INCIDENT, sent_at=T0,
                  subject="[P1] web1/shop opened: HTTP 502", body="shop on web1: opened.")


def channel(name: str, type: str = "webhook", **keys: Any) -> ChannelConfig:
    if type in ("webhook", "slack") and "url" not in keys:
        keys["url"] = "https://hooks.example/" + name
    return ChannelConfig.model_validate({"name": name, "type": type, **keys})


def routes(kind: NoticeKind, level: int = 0, priority: str = "P1") -> list[str]:
    config = Notifications(
        mail=MailSection(),
        channels=(channel("first"), channel("second"), channel("third"),
                  channel("team", priorities=["P1", "P2"]),
                  channel("inbox", "mail", to=["team@example.com"])),
        escalation=EscalationSection(chain=["first", "second", "third"]))
    return [c.name for c in recipients(config, kind, level, priority)]


# --- routing ------------------------------------------------------------------------------

def test_the_chain_is_told_in_order_and_the_others_always() -> None:
    assert routes("opened") == ["first", "team", "inbox"]
    assert routes("escalated", 1) == ["second", "team", "inbox"]
    assert routes("renotify", 1) == ["first", "second", "team", "inbox"]
    assert routes("resolved", 2) == ["first", "second", "third", "team", "inbox"]


def test_a_level_past_the_chain_is_its_last_contact() -> None:
    assert routes("escalated", 5) == ["third", "team", "inbox"]


def test_mail_is_not_told_of_acknowledgements() -> None:
    assert routes("acknowledged", 1) == ["first", "second", "team"]


def test_a_channel_hears_only_its_priorities() -> None:
    assert routes("opened", priority="P3") == ["first", "inbox"]


# --- retries ------------------------------------------------------------------------------

@pytest.mark.parametrize("attempts", range(1, 15))
def test_retries_back_off_by_doubling_up_to_ten_minutes(attempts: int) -> None:
    bound = min(10.0 * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    assert bound / 2 <= retry_delay(attempts) <= bound


# --- web channels -------------------------------------------------------------------------

@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize(("status", "retry"), [(429, True), (500, True), (503, True),
                                               (400, False), (404, False), (410, False)])
async def test_http_answers_decide_the_retry(http: aiohttp.ClientSession, status: int,
                                             retry: bool) -> None:
    async with receiving() as hooks:
        hooks.default = status
        with pytest.raises(SendError) as caught:
            await webhook.send(channel("ops", url=hooks.url + "/ops"), MESSAGE, Tools(http))
    assert caught.value.retry is retry
    assert caught.value.reason.startswith(f"HTTP {status}")


async def test_a_redirect_is_not_followed(http: aiohttp.ClientSession) -> None:
    async with receiving() as hooks:
        hooks.default = 301
        with pytest.raises(SendError) as caught:
            await webhook.send(channel("ops", url=hooks.url + "/ops"), MESSAGE, Tools(http))
    assert not caught.value.retry
    assert "redirects are not followed" in caught.value.reason


async def test_nobody_listening_is_worth_a_retry(http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(SendError) as caught:
        await webhook.send(channel("ops", url=url), MESSAGE, Tools(http))
    assert caught.value.retry
    assert caught.value.reason == "cannot connect: connection refused"


def test_a_long_key_is_hashed_into_pagerdutys_dedup_key() -> None:
    key = "web1/" + "c" * 300
    assert len(pagerduty.dedup_key(key)) == 255
    assert pagerduty.dedup_key(key) != pagerduty.dedup_key(key[:-1] + "d")
    assert pagerduty.dedup_key("web1/shop") == "web1/shop"


async def test_a_missing_routing_key_file_is_worth_a_retry(
        http: aiohttp.ClientSession, tmp_path: Path) -> None:
    pager = channel("pager", "pagerduty", routing_key_file=str(tmp_path / "missing.key"))
    with pytest.raises(SendError) as caught:
        await pagerduty.send(pager, MESSAGE, Tools(http))
    assert caught.value.retry
    assert caught.value.reason.startswith("cannot read routing_key_file ")


# --- mail ---------------------------------------------------------------------------------

class RefuseRecipients:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        return self.answer


@pytest.mark.parametrize(("answer", "retry"), [("550 5.1.1 no such user", False),
                                               ("451 4.3.0 try again later", True)])
async def test_smtp_replies_decide_the_retry(http: aiohttp.ClientSession, answer: str,
                                             retry: bool) -> None:
    async with serve_smtp(handler=RefuseRecipients(answer)) as port:
        tools = Tools(http, MailSection.model_validate({"port": port}))
        with pytest.raises(SendError) as caught:
            await mail.send(channel("inbox", "mail", to=["x@example.com"]), MESSAGE, tools)
    assert caught.value.retry is retry
    assert answer.split(" ", 1)[1] in caught.value.reason


async def test_no_smtp_server_is_worth_a_retry(http: aiohttp.ClientSession) -> None:
    tools = Tools(http, MailSection.model_validate({"port": free_port()}))
    with pytest.raises(SendError) as caught:
        await mail.send(channel("inbox", "mail", to=["x@example.com"]), MESSAGE, tools)
    assert caught.value.retry


async def test_required_starttls_that_is_not_offered_is_refused(
        http: aiohttp.ClientSession) -> None:
    async with mail_server() as (port, mailbox):
        tools = Tools(http, MailSection.model_validate({"port": port, "tls": "starttls"}))
        with pytest.raises(SendError) as caught:
            await mail.send(channel("inbox", "mail", to=["x@example.com"]), MESSAGE, tools)
    assert not caught.value.retry
    assert "does not offer STARTTLS" in caught.value.reason
    assert mailbox.messages == []


async def test_mail_logs_in_with_the_password_file(
        http: aiohttp.ClientSession, tmp_path: Path) -> None:
    from tests.probes.mailservers import MAIL_PASSWORD, MAIL_USER

    password = tmp_path / "smtp.password"
    password.write_text(MAIL_PASSWORD + "\n")
    async with mail_server() as (port, mailbox):
        tools = Tools(http, MailSection.model_validate(
            {"port": port, "username": MAIL_USER, "password_file": str(password)}))
        await mail.send(channel("inbox", "mail", to=["x@example.com"]), MESSAGE, tools)
    [(recipients_, message)] = mailbox.messages
    assert recipients_ == ["x@example.com"]
    assert message["Subject"] == MESSAGE.subject


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_round_claims_no_more_than_its_sends_can_finish() -> None:
    slow = [channel(f"hook{n}", url=f"http://127.0.0.1/{n}", timeout="60s") for n in (1, 2)]
    # 240 s a round, 61 s a send at worst: 3 waves of 8 sends, shared by 2 channels.
    assert claim_limit(slow) == 12
    assert claim_limit([channel("quick", url="http://127.0.0.1/", timeout="5s")]) == 20
    assert claim_limit([]) == 20
    many = [channel(f"h{n}", url=f"http://127.0.0.1/{n}", timeout="60s") for n in range(30)]
    assert claim_limit(many) == 1           # always at least one


def test_people_reached_by_a_policy_count_as_sends_of_each_notice() -> None:
    def person(name: str, contacts: int) -> Person:
        return Person(name, tuple(Contact("mail", f"{name}{n}@example.com")
                                  for n in range(contacts)))

    dave_covers = Override(1, "dave", T0, T0 + dt.timedelta(days=1))
    roster = Roster(
        people=(person("alice", 1), person("bob", 2), person("carol", 1),
                person("dave", 4)),
        schedules=(Schedule("primary", "UTC", "daily", dt.time(9), T0.date(),
                            ("alice", "bob"), (dave_covers,)),),
        policies=(
            EscalationPolicy("urgent", (Priority.P1,), (
                PolicyStep(0.0, (Target("schedule", "primary"),)),
                PolicyStep(0.5, (Target("person", "carol"), Target("channel", "ops"))))),
            EscalationPolicy("calm", (Priority.P3,), (
                PolicyStep(0.0, (Target("person", "bob"),)),))))
    # primary: dave (4) has the most of whoever may be on call; then carol (1); "ops" is
    # one of the config's channels, counted with them.
    assert contact_sends(roster) == 5
    assert contact_sends(Roster()) == 0
    ops = channel("ops", url="http://127.0.0.1/ops", timeout="60s")
    # 240 s a round, 61 s a send at worst: 3 waves of 8 sends, shared by 1 + 5 sends.
    assert claim_limit([ops], contact_sends(roster)) == 4
    # People's contacts alone: 10 s each (+1 s grace) allows 21 waves.
    assert claim_limit([], 5) == 20
    assert claim_limit([], 50) == 3


# --- a person's PagerDuty contact: only a regular file in the keys directory -------------

def pagerduty_contact(keys: Path, address: str, url: str) -> ChannelConfig:
    """The channel a person's PagerDuty contact is sent through, to ``url``."""
    notify = Notifications(pagerduty_keys_dir=str(keys),
                           internal_webhooks=(ipaddress.ip_network("127.0.0.1/32"),))
    [made] = contact_channels(Person("bob", (Contact("pagerduty", address),)), notify)
    return made.model_copy(update={"url": url})


async def test_a_persons_pagerduty_key_is_read_only_from_the_keys_directory(
        tmp_path: Path) -> None:
    keys = tmp_path / "pagerduty.d"
    keys.mkdir()
    (keys / "bob.key").write_text("R0UT1NGKEY\nsecond line\n")
    (tmp_path / "secret").write_text("NOT-A-KEY\n")
    (keys / "link.key").symlink_to(tmp_path / "secret")
    os.mkfifo(keys / "fifo.key")     # opened without O_NONBLOCK, this would hang the test
    (keys / "huge.key").write_bytes(b"k" * 100_000)
    async with receiving() as hooks, contacts_session(
            (ipaddress.ip_network("127.0.0.1/32"),)) as guarded:
        tools = Tools(guarded, contacts_http=guarded)
        url = hooks.url + "/enqueue"
        refusals = {}
        for name in ("link.key", "fifo.key", "huge.key", "../secret", "none.key"):
            with pytest.raises(SendError) as caught:
                await pagerduty.send(pagerduty_contact(keys, f"{keys}/{name}", url), MESSAGE,
                                     tools)
            refusals[name] = caught.value.reason
        await pagerduty.send(pagerduty_contact(keys, f"{keys}/bob.key", url), MESSAGE, tools)
    assert "a symbolic link" in refusals["link.key"]
    assert "not a regular file" in refusals["fifo.key"]
    assert "expected one line of at most 4096 bytes" in refusals["huge.key"]
    assert f"expected a file directly in {keys}" in refusals["../secret"]
    assert "No such file or directory" in refusals["none.key"]
    assert "NOT-A-KEY" not in " ".join(refusals.values())
    [sent] = hooks.at("/enqueue")
    assert sent["routing_key"] == "R0UT1NGKEY"


async def test_a_config_channels_key_file_is_read_as_the_admin_wrote_it(
        http: aiohttp.ClientSession, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("R0UT1NGKEY\n")
    (tmp_path / "pager.key").symlink_to(tmp_path / "secret")
    async with receiving() as hooks:
        pager = channel("pager", "pagerduty", routing_key_file=str(tmp_path / "pager.key"),
                        url=hooks.url + "/enqueue")
        await pagerduty.send(pager, MESSAGE, Tools(http))
    assert hooks.at("/enqueue")[0]["routing_key"] == "R0UT1NGKEY"


# --- where a person's webhook may point ----------------------------------------------------

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://127.1/x", "http://2130706433/x", "http://0x7f.0.0.1/x",
    "http://[::1]/x", "http://[::ffff:127.0.0.1]/x", "http://169.254.169.254/x",
    "http://10.1.2.3/x", "http://192.168.0.1/x", "http://100.64.0.1/x", "http://0.0.0.0/x",
    "http://[fe80::1%25eth0]/x", "http://[fd00::1]/x", "http://localhost/x",
    "http://LOCALHOST./x", "http://shop.localhost/x", "http://ip6-localhost/x"])
def test_internal_hosts_are_refused_without_the_allow_list(url: str) -> None:
    assert "internal address" in addresses.problem(url, ())


def test_the_allow_list_lets_its_networks_through_and_no_more() -> None:
    assert addresses.problem("http://127.0.0.1:8080/x", LOOPBACK) == ""
    assert addresses.problem("http://[::ffff:127.0.0.1]/x", LOOPBACK) == ""
    assert addresses.problem("http://127.0.0.2/x", LOOPBACK) != ""
    assert addresses.problem("https://hooks.example/x", ()) == ""
    assert addresses.problem("https://203.0.113.9.example/x", ()) == ""      # a name
    assert addresses.problem("https://8.8.8.8/x", ()) == ""


async def test_the_guarded_resolver_drops_internal_addresses() -> None:
    resolver = addresses.GuardedResolver(())
    try:
        with pytest.raises(addresses.Refused):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    allowing = addresses.GuardedResolver(LOOPBACK)
    try:
        assert {r["host"] for r in await allowing.resolve("localhost", 80)} == {"127.0.0.1"}
    finally:
        await allowing.close()


@settings(max_examples=300, deadline=None)
@given(address=st.ip_addresses(v=4))
def test_an_ipv4_host_is_judged_the_same_in_every_form_the_resolver_takes(
        address: ipaddress.IPv4Address) -> None:
    inside = not address.is_global or address.is_multicast or address.is_unspecified
    dotted_hex = ".".join(hex(b) for b in address.packed)
    for form in (str(address), str(int(address)), dotted_hex, f"[::ffff:{address}]"):
        assert bool(addresses.problem(f"http://{form}:8080/x", ())) == inside, form
        assert addresses.problem(f"http://{form}/x", (ipaddress.ip_network(address),)) == ""
