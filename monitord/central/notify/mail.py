"""Mail: one plain-text message per notice, through the SMTP server of ``[mail]``.

Subject and body come from the jinja2 templates ``mail.title.j2`` and ``mail.body.j2``
(stock ones in ``monitord/templates/notify``; a file of the same name in
``[mail] templates_dir`` wins), rendered by the notifier. The texts are not escaped
(plain text), so nothing from an incident may reach a header raw: the subject is one
line with every CR and LF folded away before it is set, and the email package refuses
a header value that still holds one. All notices of one incident carry the same
``References`` id, so mail programs thread them.

The password file (``[mail] password_file``) and the CA file are read at each send, in a
thread, the password file only if it is a regular file (``keyfiles.read_secret``).

SMTP replies decide the retry: 4xx (and a lost connection) is worth another try, 5xx is
refused for good (a wrong address, a relay that will not take it).
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from email.message import EmailMessage

from monitord.central.notify import keyfiles
from monitord.central.notify.message import Message, Tools
from monitord.central.notify.settings import ChannelConfig, MailSection
from monitord.errors import MonitordError, SendError
from monitord.net import client_context, reason, shown


def compose(channel: ChannelConfig, message: Message, mail: MailSection) -> EmailMessage:
    incident = message.incident
    sender = mail.from_address
    domain = sender.rpartition("@")[2] or "monitord.invalid"
    thread = f"<incident-{incident.id}.monitord@{domain}>"
    email_message = EmailMessage()
    email_message["Subject"] = " ".join(message.subject.split())
    email_message["From"] = sender
    email_message["To"] = ", ".join(channel.to)
    email_message["Date"] = email.utils.format_datetime(message.sent_at)
    email_message["Message-ID"] = email.utils.make_msgid(
        f"incident-{incident.id}.notice-{message.notice_id}", domain=domain)
    email_message["References"] = thread
    email_message["In-Reply-To"] = thread
    email_message["Auto-Submitted"] = "auto-generated"     # RFC 3834: no auto-replies
    email_message["X-Monitord-Incident"] = str(incident.id)
    email_message["X-Monitord-Priority"] = incident.priority
    email_message.set_content(message.body + "\n")
    return email_message


async def send(channel: ChannelConfig, message: Message, tools: Tools) -> None:
    import aiosmtplib

    mail = tools.mail
    if mail is None:     # the config loader refuses a mail channel without [mail]
        raise SendError("no [mail] section: there is no SMTP server to send through",
                        retry=False)
    try:
        # Files are read in a thread: the event loop serves the API meanwhile.
        password, context = await asyncio.to_thread(_login, mail)
    except MonitordError as e:     # the admin can fix the file: worth retrying
        raise SendError(str(e), retry=True) from None
    try:
        refused, _ = await aiosmtplib.send(
            compose(channel, message, mail), hostname=mail.host, port=mail.port,
            username=mail.username or None, password=password,
            use_tls=mail.tls == "implicit", start_tls=mail.tls == "starttls",
            tls_context=context, timeout=channel.timeout,
            local_hostname=mail.from_address.rpartition("@")[2] or None)
    except aiosmtplib.SMTPRecipientsRefused as e:
        said = "; ".join(f"{r.recipient}: {r.code} {shown(r.message)}" for r in e.recipients)
        retry = all(400 <= r.code < 500 for r in e.recipients)
        raise SendError(f"every recipient refused: {said}", retry=retry) from None
    except aiosmtplib.SMTPResponseException as e:
        raise SendError(f"the SMTP server said {e.code} {shown(e.message)}",
                        retry=400 <= e.code < 500 or e.code < 0) from None
    except (aiosmtplib.SMTPTimeoutError, TimeoutError):
        raise SendError("the SMTP server did not answer in time", retry=True) from None
    except aiosmtplib.SMTPException as e:
        raise _failure(e) from None
    except OSError as e:
        raise SendError(f"SMTP failed: {reason(e)}", retry=True) from None
    if refused:
        # Delivered to the others; sending again would repeat it to them.
        said = "; ".join(f"{who}: {answer.code} {shown(answer.message)}"
                         for who, answer in refused.items())
        raise SendError(f"delivered, but some recipients were refused: {said}", retry=False)


def _login(mail: MailSection) -> tuple[str | None, ssl.SSLContext | None]:
    """The SMTP password (None without one) and the TLS context (None without TLS), read
    from their files (blocking: call it in a thread)."""
    password = keyfiles.read_secret(mail.password_file, "password_file") \
        if mail.password_file else None
    context = client_context(mail.verify_tls, mail.ca_file, {}) if mail.tls != "none" \
        else None
    return password, context


def _failure(error: Exception) -> SendError:
    """aiosmtplib wraps OS and TLS errors: a TLS problem needs the admin, the rest may pass."""
    cause = error.__cause__
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        return SendError(f"TLS with the SMTP server failed: {reason(cause)}", retry=False)
    if isinstance(cause, OSError):
        return SendError(f"SMTP failed: {reason(cause)}", retry=True)
    text = shown(str(error))
    if "STARTTLS extension not supported" in text:
        return SendError('the SMTP server does not offer STARTTLS; set [mail] tls = "none"',
                         retry=False)
    return SendError(f"SMTP failed: {text}", retry=True)
