"""``monitord central`` person, contact, schedule, policy and oncall as real processes on a
real store: what they print, and one clear line (exit 2, no traceback) for bad input."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest

from monitord.central.notify.rotation import local_text, zone
from monitord.central.oncall.parse import instant
from monitord.store.people import Schedule
from tests.central.test_server import central, write_config

HOOK = "http://127.0.0.1:9/hooks/XXXXsecretXXXX"
BERLIN = zone("Europe/Berlin")
BERLIN_SCHEDULE = Schedule("primary", "Europe/Berlin", "weekly", dt.time(9, 0),
                           dt.date(2026, 3, 23), ("alice", "bob"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    with path.open("a") as f:
        f.write('\n[[channel]]\nname = "ops"\ntype = "webhook"\nurl = "http://127.0.0.1:9/ops"\n'
                '\n[notify]\nallow_internal_webhooks = ["127.0.0.1/32"]\n')
    (tmp_path / "pagerduty.d").mkdir()
    return path


def ok(config: Path, *args: str) -> str:
    done = central(*args, "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def refused(config: Path, *args: str) -> str:
    done: subprocess.CompletedProcess[str] = central(*args, "-c", str(config))
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    return line


def test_people_and_their_contacts(config: Path) -> None:
    keys = config.parent / "pagerduty.d"
    assert ok(config, "person", "add", "alice").startswith("added alice")
    assert "already a person" in ok(config, "person", "add", "alice")
    said = ok(config, "contact", "add", "alice", "webhook", HOOK)
    assert said.strip() == "alice is reached by webhook http://127.0.0.1/... too"
    said = ok(config, "contact", "add", "alice", "mail", "alice@example.com")
    assert said.splitlines()[1].startswith("note: the config has no [mail] section")
    assert ok(config, "person", "list").strip() == (
        "alice: mail alice@example.com; webhook http://127.0.0.1/...")
    ok(config, "contact", "remove", "alice", "webhook", HOOK)
    assert "webhook" not in ok(config, "person", "list")
    assert refused(config, "contact", "add", "carol", "mail", "c@example.com") == (
        "monitord: unknown person 'carol'; add them first: monitord central person add carol")
    assert refused(config, "contact", "add", "alice", "mail", "not an address").startswith(
        'monitord: mail contact "not an address": expected a plain address')
    line = refused(config, "contact", "add", "alice", "slack", "ftp://x/XXXXsecretXXXX")
    assert "XXXXsecretXXXX" not in line and 'expected an "https://"' in line
    assert refused(config, "contact", "add", "alice", "pagerduty", "key.txt") == (
        f"monitord: pagerduty contact 'key.txt': expected a file directly in {keys} "
        f"([notify] pagerduty_keys_dir), like {keys}/team.key")
    for internal in ("http://127.0.0.2/x", "http://[::1]/x", "http://2130706434/x", "http://0x7f.1.0.1/x",
                     "https://localhost./x", "http://169.254.169.254/latest/meta-data"):
        line = refused(config, "contact", "add", "alice", "webhook", internal)
        assert line.startswith("monitord: webhook contact: its host is"), line
        assert "allow_internal_webhooks" in line
    assert refused(config, "person", "add", "monitord").startswith(
        "monitord: person name 'monitord': reserved")


def test_a_schedule_its_overrides_and_who_is_on_call(config: Path) -> None:
    for name in ("alice", "bob", "carol"):
        ok(config, "person", "add", name)
    add = ("schedule", "add", "primary", "alice", "bob", "--rotation", "weekly",
           "--handoff", "09:00", "--starts", "2026-03-23")
    assert refused(config, *add, "--zone", "Mars/Olympus") == (
        'monitord: unknown time zone "Mars/Olympus": expected an IANA zone like '
        '"Europe/Berlin" or "UTC"')
    assert refused(config, *add, "--zone", "../../etc/passwd").startswith(
        'monitord: unknown time zone "../../etc/passwd"')
    assert refused(config, *add[:-4], "--handoff", "9am", "--zone", "UTC") == (
        'monitord: bad hand-off time "9am": expected "HH:MM" on a 24-hour clock, like "09:00"')
    assert refused(config, "schedule", "add", "primary", "alice", "dave", "--zone", "UTC"
                   ).startswith("monitord: unknown person 'dave'")
    said = ok(config, *add, "--zone", "Europe/Berlin")
    assert said.strip() == ("added primary: weekly hand-off Mon 09:00 Europe/Berlin, from "
                            "2026-03-23; alice, bob")
    assert "exists already" in refused(config, *add, "--zone", "Europe/Berlin")
    assert refused(config, "schedule", "override", "primary", "carol", "--from", "soon",
                   "--until", "2026-03-30 08:00").startswith('monitord: bad time "soon"')
    # An override from two days ago for thirty days: the store takes one that ends within
    # a year of the real clock, which these processes read.
    today = dt.datetime.now(BERLIN).date()
    starts, ends = today - dt.timedelta(days=2), today + dt.timedelta(days=30)
    since = local_text(BERLIN_SCHEDULE, instant(f"{starts} 18:00", "Europe/Berlin"))
    until = local_text(BERLIN_SCHEDULE, instant(f"{ends} 08:00", "Europe/Berlin"))
    assert refused(config, "schedule", "override", "primary", "carol", "--from",
                   f"{starts} 18:00", "--until", "9999-12-31 23:00") == (
        "monitord: an override ends at most 366 days ahead, not '9999-12-31 23:00'; for a "
        "longer change, change the schedule's members")
    assert refused(config, "schedule", "override", "primary", "carol", "--from",
                   f"{starts} 18:00", "--until", f"{starts} 17:00") == (
        "monitord: an override must end after it starts")
    said = ok(config, "schedule", "override", "primary", "carol", "--from", f"{starts} 18:00",
              "--until", f"{ends} 08:00")
    assert said.strip() == (f"override #1: carol is on call for primary from {since} until "
                            f"{until}")
    shown = ok(config, "schedule", "show", "primary")
    assert shown.splitlines()[0].startswith("primary: weekly hand-off Mon 09:00")
    assert f"  now:  carol since {since} (override)" in shown
    assert re.search(rf"  next: (alice|bob) from {until}", shown)
    assert f"    #1 carol from {since} until {until}" in shown
    now = ok(config, "oncall")
    assert now.splitlines()[:2] == ["primary", f"  now:  carol since {since} (override)"]
    assert refused(config, "schedule", "show", "secondary") == (
        "monitord: unknown schedule 'secondary'")
    assert ok(config, "schedule", "remove-override", "primary", "1").strip() == (
        "removed override #1 of primary")
    assert "now:  carol" not in ok(config, "oncall")
    assert refused(config, "schedule", "remove-override", "primary", "1") == (
        "monitord: schedule 'primary' has no override #1")
    assert ok(config, "schedule", "remove", "primary").strip() == "removed schedule primary"
    assert "no schedules yet" in ok(config, "oncall")


def test_escalation_policies(config: Path) -> None:
    ok(config, "person", "add", "bob")
    ok(config, "schedule", "add", "primary", "bob", "--zone", "UTC")
    assert "no policies" in ok(config, "policy", "show")
    said = ok(config, "policy", "set", "default", "--priority", "P1,P2",
              "--step", "0: schedule:primary", "--step", "0.5: person:bob, channel:ops")
    assert said.splitlines() == [
        "default (P1, P2)", "  step 1 at once: schedule:primary",
        "  step 2 after 50% of the response target (P1 7m30s, P2 1h): person:bob, channel:ops"]
    assert ok(config, "policy", "show", "default") == said
    assert refused(config, "policy", "set", "other", "--priority", "P2",
                   "--step", "0: person:bob") == (
        "monitord: P2 is covered by policy 'default' already; take it out of that one first")
    assert refused(config, "policy", "set", "x", "--priority", "P3",
                   "--step", "0: channel:pager") == (
        'monitord: unknown channel "pager" (channels: ops)')
    assert refused(config, "policy", "set", "x", "--priority", "P3",
                   "--step", "0: person:dave").startswith("monitord: unknown person 'dave'")
    assert refused(config, "policy", "set", "x", "--priority", "P4",
                   "--step", "0: person:bob") == (
        'monitord: bad priority "P4": expected P1, P2 or P3')
    assert refused(config, "policy", "set", "x", "--priority", "P3", "--step", "0: person:bob",
                   "--step", "0: person:bob") == (
        "monitord: policy x: each step must start later than the one before (0 comes "
        "after 0)")
    assert refused(config, "policy", "set", "x", "--priority", "P3",
                   "--step", "soon: person:bob").startswith('monitord: step "soon: person:bob"')
    assert "removed policy default" in ok(config, "policy", "remove", "default")
    assert refused(config, "policy", "remove", "default") == "monitord: unknown policy 'default'"


def test_a_pagerduty_contact_names_a_regular_file_in_the_keys_directory(config: Path) -> None:
    keys = config.parent / "pagerduty.d"
    (keys / "team.key").write_text("R0UT1NGKEY\n")
    (keys / "sub").mkdir()
    (keys / "sub" / "deep.key").write_text("R0UT1NGKEY\n")
    (keys / "passwd.key").symlink_to("/etc/passwd")
    os.mkfifo(keys / "fifo.key")
    ok(config, "person", "add", "alice")
    for outside in ("/etc/passwd", f"{keys}/../central.toml", f"{keys}/sub/deep.key",
                    f"{keys}/", f"{keys}/.."):
        line = refused(config, "contact", "add", "alice", "pagerduty", outside)
        assert line.endswith(f"expected a file directly in {keys} ([notify] "
                             f"pagerduty_keys_dir), like {keys}/team.key"), line
    assert refused(config, "contact", "add", "alice", "pagerduty", f"{keys}/passwd.key") == (
        f"monitord: cannot read pagerduty contact {keys}/passwd.key: a symbolic link; "
        f"expected a regular file in {keys}")
    assert refused(config, "contact", "add", "alice", "pagerduty", f"{keys}/fifo.key") == (
        f"monitord: pagerduty contact {keys}/fifo.key: not a regular file; expected one in "
        f"{keys}")
    assert refused(config, "contact", "add", "alice", "pagerduty", f"{keys}/none.key") == (
        f"monitord: cannot read pagerduty contact {keys}/none.key: No such file or "
        f"directory; expected a regular file in {keys}")
    said = ok(config, "contact", "add", "alice", "pagerduty", f"{keys}/sub/../team.key")
    assert said.strip() == f"alice is reached by pagerduty {keys}/team.key too"
    assert "R0UT1NGKEY" not in said


def test_every_change_is_logged_on_stderr_with_who_made_it(config: Path) -> None:
    def audit(*args: str) -> str:
        env = {"SUDO_USER": "auditor", "JOURNAL_STREAM": ""}     # plain lines, not journal
        done = central(*args, "-c", str(config), env=env)
        assert done.returncode == 0, done.stderr
        [line] = done.stderr.splitlines()
        assert "XXXXsecretXXXX" not in line and "Traceback" not in line
        return line.split(" INFO ", 1)[1]

    assert audit("person", "add", "alice") == "central: cli (auditor) added person alice"
    assert audit("contact", "add", "alice", "webhook", HOOK) == (
        "central: cli (auditor) added a webhook contact for alice")
    assert audit("schedule", "add", "primary", "alice", "--zone", "UTC", "--rotation",
                 "daily", "--handoff", "09:00", "--starts", "2026-03-23") == (
        "central: cli (auditor) added schedule primary: daily hand-off 09:00 UTC, from "
        "2026-03-23; alice")
    today = dt.datetime.now(dt.UTC).date()
    assert audit("schedule", "override", "primary", "alice", "--from", f"{today} 18:00",
                 "--until", f"{today + dt.timedelta(days=1)} 08:00") == (
        f"central: cli (auditor) added override #1 of schedule primary: alice from {today} "
        f"18:00 UTC until {today + dt.timedelta(days=1)} 08:00 UTC")
    assert audit("policy", "set", "default", "--priority", "P1", "--step",
                 "0: schedule:primary") == (
        "central: cli (auditor) set escalation policy default (P1); step 1 at once: "
        "schedule:primary")
    assert audit("schedule", "remove-override", "primary", "1") == (
        "central: cli (auditor) removed override #1 of schedule primary")
    assert audit("policy", "remove", "default") == (
        "central: cli (auditor) removed escalation policy default")
    assert audit("schedule", "remove", "primary") == (
        "central: cli (auditor) removed schedule primary")
    assert audit("contact", "remove", "alice", "webhook", HOOK) == (
        "central: cli (auditor) removed a webhook contact of alice")
    # Reading changes nothing and logs nothing.
    done = central("person", "list", "-c", str(config))
    assert done.returncode == 0 and done.stderr == ""
