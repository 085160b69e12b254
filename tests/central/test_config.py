"""The central config: every bad config beside its exact message, the documented example,
and what [policy] means to the store."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path

import pytest

from monitord.central.config import (
    Address,
    CentralSection,
    load_central_config,
)
from monitord.central.notify.settings import (
    ChannelConfig,
    EscalationSection,
    MailSection,
    Notifications,
    NotifySection,
)
from monitord.errors import ConfigError
from monitord.schema import PolicyConfig
from monitord.store.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "etc" / "monitord" / "central.toml"
BAD = Path(__file__).parent / "config" / "bad"


@pytest.mark.parametrize("case", sorted(p.stem for p in BAD.glob("*.toml")))
def test_bad_config_reports_exact_message(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    expected = (BAD / f"{case}.expected").read_text().splitlines()
    with pytest.raises(ConfigError) as caught:
        load_central_config(f"{case}.toml")
    assert caught.value.problems == expected


def test_every_bad_config_has_an_expected_message() -> None:
    assert {p.stem for p in BAD.glob("*.toml")} == {p.stem for p in BAD.glob("*.expected")}


def test_postgres_password_is_never_echoed() -> None:
    assert "s3cret" not in (BAD / "postgres_url.expected").read_text()


def test_channel_url_is_never_echoed() -> None:
    # A Slack webhook URL is the channel's password.
    assert "s3cret" in (BAD / "channel_mistakes.toml").read_text()
    assert "s3cret" not in (BAD / "channel_mistakes.expected").read_text()


def test_example_is_all_defaults() -> None:
    config = load_central_config(EXAMPLE)
    assert config.central == CentralSection()
    assert config.policy == PolicyConfig()
    assert config.notify == dataclasses.replace(
        Notifications(), pagerduty_keys_dir=str(EXAMPLE.parent / "pagerduty.d"))
    assert config.central.listen == Address("127.0.0.1", 8460)
    assert config.sqlite_path == Path("/var/lib/monitord-central/central.db")


def test_example_documents_every_option() -> None:
    text = EXAMPLE.read_text()
    documented = set(re.findall(r"^# (\w+) = ", text, re.MULTILINE))
    notify = {info.alias or name for model in (MailSection, ChannelConfig, EscalationSection,
                                               NotifySection)
              for name, info in model.model_fields.items()}
    assert documented == (set(CentralSection.model_fields) | set(PolicyConfig.model_fields)
                          | notify)


def test_policy_section_is_the_stores_policy(tmp_path: Path) -> None:
    path = tmp_path / "central.toml"
    path.write_text('[central]\nlisten = "[::1]:9000"\nstore_url = "sqlite:///srv/c.db"\n'
                    '[policy]\nP1 = "5m"\nreopen_window = "0s"\n'
                    'missed_heartbeats = 5\nmin_silence = "10m"\n')
    config = load_central_config(path)
    assert config.central.listen == Address("::1", 9000)
    assert str(config.central.listen) == "[::1]:9000"
    assert Policy.from_config(config.policy) == Policy(
        targets={"P1": 300.0, "P2": 7200.0, "P3": 172800.0}, reopen_window=0.0,
        missed_heartbeats=5, min_silence=600.0)


def test_defaults_are_the_stores_defaults() -> None:
    assert Policy.from_config(PolicyConfig()) == Policy()


def test_notify_section_sets_where_people_s_contacts_may_reach(tmp_path: Path) -> None:
    path = tmp_path / "central.toml"
    path.write_text('[notify]\npagerduty_keys_dir = "/srv/keys"\n'
                    'allow_internal_webhooks = ["127.0.0.1/32", "fd00::/8"]\n')
    notify = load_central_config(path).notify
    assert notify.pagerduty_keys_dir == "/srv/keys"
    assert notify.internal_webhooks == (ipaddress.ip_network("127.0.0.1/32"),
                                        ipaddress.ip_network("fd00::/8"))
    path.write_text("")
    assert load_central_config(path).notify.pagerduty_keys_dir == str(tmp_path / "pagerduty.d")
