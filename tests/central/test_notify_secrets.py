"""Secret files read at send time (the SMTP password, a webhook's signing secret and custom
header values, a PagerDuty routing key) never hold the notifier: they are read in a
thread, and a path that is no regular file (here a FIFO nobody writes to, which a plain
open() would wait on for ever) fails its channel with one line while the other channels
are told. Real API, real store (every backend), real servers on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

from monitord.store.protocol import Store
from tests.central.receivers import PAGERDUTY_PATH, mail_server, receiving
from tests.central.test_notify import central, hook, open_incident, round_at, settings


async def test_a_fifo_as_a_secret_file_fails_its_channel_and_the_others_are_told(
        store: Store, tmp_path: Path) -> None:
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    async with mail_server() as (port, mailbox), receiving() as hooks:
        notify = settings(
            {"name": "inbox", "type": "mail", "to": ["oncall@example.com"]},
            hook("signed", hooks.url + "/signed", secret_file=str(fifo)),
            hook("headed", hooks.url + "/headed", header_files={"Authorization": str(fifo)}),
            hook("pager", hooks.url + PAGERDUTY_PATH, "pagerduty", routing_key_file=str(fifo)),
            hook("ops", hooks.url + "/ops"),
            hook("chat", hooks.url + "/chat", "slack"),
            mail={"host": "127.0.0.1", "port": port, "username": "monitord",
                  "password_file": str(fifo)})
        async with central(store, notify) as api:
            await open_incident(api, "P1")
            [delivery] = await round_at(api, 0)
    assert sorted(delivery.told) == ["chat", "ops"]
    assert sorted(delivery.failed) == ["headed", "inbox", "pager", "signed"]
    keys = {"inbox": "password_file", "signed": "secret_file",
            "headed": "header_files.Authorization", "pager": "routing_key_file"}
    for name, key in keys.items():
        assert delivery.failed[name] == (f"cannot read {key} {fifo}: not a regular file; "
                                         "expected a file whose first line is the secret")
    assert delivery.retry_at is not None          # the admin can fix the file
    assert sorted(r.path for r in hooks.requests) == ["/chat", "/ops"]
    assert mailbox.messages == []

