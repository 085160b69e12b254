"""What every sender is handed (``Message``, ``Tools``), what it raises (``SendError``), and
the JSON POST the web channels share.

Every sender has one signature, ``async send(channel, message, tools)``: the channel's
config, the notice with its incident and rendered texts, and the shared HTTP session and
SMTP settings. It returns when the channel has the message and raises ``SendError``
otherwise, saying whether trying again later can help: a 2xx answer is success; 429,
5xx, timeouts and network errors are worth a retry; any other answer is refused for good.
The caller puts every send under the channel's deadline too.

Error texts never carry a channel's URL (Slack's and many webhooks' URLs are their
secret); the notifier also scrubs registered secrets from them before they reach a log
line or an incident's timeline.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from monitord.central.notify import addresses
from monitord.central.notify.addresses import Network
from monitord.central.notify.evidence import Evidence
from monitord.central.notify.settings import ChannelConfig, ContactChannel, MailSection
from monitord.durations import format_duration
from monitord.errors import SendError
from monitord.net import reason, shown
from monitord.store.protocol import Incident, NoticeKind

DETAIL_BYTES = 512       # of a refusal's body, for the log and the timeline


@dataclass(frozen=True)
class Message:
    """One notice about one incident, ready for any channel."""

    notice_id: int
    kind: NoticeKind
    level: int                 # the incident's escalation level (0: the first contact)
    incident: Incident
    sent_at: dt.datetime
    subject: str               # one line, from mail.title.j2
    body: str                  # plain text, from mail.body.j2
    escalated_to: str = ""     # the chain's contact an "escalated" notice brings in
    url: str = ""              # the incident's page, when one is known
    evidence: Evidence | None = None   # the last reading and what was tried (evidence.py)


@dataclass(frozen=True)
class Tools:
    """What senders share: one HTTP session and the SMTP server's settings, and the HTTP
    session that people's own webhooks go through (its resolver drops internal addresses:
    ``addresses.GuardedResolver``)."""

    http: aiohttp.ClientSession
    mail: MailSection | None = None
    wall_clock: Callable[[], float] = field(default=time.time)   # what signatures say
    contacts_http: aiohttp.ClientSession | None = None

    def session(self, channel: ChannelConfig) -> aiohttp.ClientSession:
        """The session to POST to ``channel`` with; SendError (not retried) if it is a
        person's contact whose URL may not be reached."""
        if not isinstance(channel, ContactChannel):
            return self.http
        why = addresses.problem(channel.endpoint, channel.internal)
        if why:
            raise SendError(f"not sent: {why}", retry=False)
        if self.contacts_http is None:
            raise SendError("not sent: no HTTP session for people's contacts", retry=False)
        return self.contacts_http


def contacts_session(allowed: Sequence[Network]) -> aiohttp.ClientSession:
    """The HTTP session for people's webhooks: internal addresses but ``allowed`` dropped."""
    connector = aiohttp.TCPConnector(resolver=addresses.GuardedResolver(allowed))
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=None),
                                 cookie_jar=aiohttp.DummyCookieJar())


Sender = Callable[[ChannelConfig, Message, Tools], Awaitable[None]]


async def post_json(channel: ChannelConfig, body: dict[str, Any], tools: Tools) -> None:
    """POST ``body`` to the channel's URL; return on 2xx, else raise SendError."""
    await post_bytes(channel, encode(body), {}, tools)


def encode(body: dict[str, Any]) -> bytes:
    """The JSON bytes that are sent (and signed)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def post_bytes(channel: ChannelConfig, data: bytes, headers: dict[str, str],
                     tools: Tools) -> None:
    """POST the JSON ``data`` with ``headers`` to the channel's URL; return on 2xx, else
    raise SendError."""
    session = tools.session(channel)
    try:
        async with session.post(
            channel.endpoint, data=data, allow_redirects=False,
            headers={**headers, "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=channel.timeout),
        ) as response:
            if 200 <= response.status < 300:
                return
            detail = await response.content.read(DETAIL_BYTES)
            status = response.status
    except TimeoutError:
        raise SendError(f"no answer within {format_duration(channel.timeout)}",
                        retry=True) from None
    except aiohttp.ClientConnectorError as e:
        if isinstance(e.os_error, addresses.Refused):     # a rule, not an outage
            raise SendError(f"not sent: {e.os_error}", retry=False) from None
        raise SendError(f"cannot connect: {reason(e.os_error)}", retry=True) from None
    except aiohttp.ServerDisconnectedError:
        raise SendError("the server closed the connection without an answer",
                        retry=True) from None
    except (aiohttp.ClientError, OSError) as e:
        # str(e) of some aiohttp errors holds the URL: name the kind of failure only.
        raise SendError(f"the request failed ({type(e).__name__})", retry=True) from None
    raise refused(status, detail.decode("utf-8", "replace"))


def refused(status: int, detail: str) -> SendError:
    """An HTTP answer other than 2xx, as a SendError that says whether to retry."""
    said = f": {shown(' '.join(detail.split()))}" if detail.strip() else ""
    if 300 <= status < 400:
        return SendError(f"HTTP {status}: redirects are not followed; configure the URL it "
                         "redirects to", retry=False)
    return SendError(f"HTTP {status}{said}", retry=status == 429 or status >= 500)
