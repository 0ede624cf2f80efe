"""Send mail through the SMTP server named by `SMTP_URL` (optional).

`smtp://user:pass@host:587` uses STARTTLS when the server offers it; `smtps://…:465`
uses TLS from the first byte. Credentials are never sent over a plain connection to
another machine. The sender is `?from=` on the URL, else the user name when it is an
address, else `voxboard@<host>`.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

TIMEOUT_SECONDS = 10
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class MailError(RuntimeError):
    """Mail could not be sent; the message is safe to show (no credentials in it)."""


def mail_enabled() -> bool:
    """Tell whether an SMTP server is configured."""
    return bool(current_app.config.get("SMTP_URL"))


def send(to: str, subject: str, body: str) -> None:
    """Send a plain-text message to `to` through `SMTP_URL`; raise `MailError` on failure."""
    url = urlsplit(current_app.config["SMTP_URL"])
    if url.scheme not in {"smtp", "smtps"} or not url.hostname:
        raise MailError("SMTP_URL must look like smtp://user:pass@host:587 or smtps://…")
    host = url.hostname
    user = unquote(url.username) if url.username else None
    password = unquote(url.password) if url.password else ""
    sender = parse_qs(url.query).get("from", [None])[0] or (
        user if user and "@" in user else f"voxboard@{host}"
    )
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    context = ssl.create_default_context()
    try:
        if url.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, url.port or 465, timeout=TIMEOUT_SECONDS, context=context
            )
        else:
            client = smtplib.SMTP(host, url.port or 587, timeout=TIMEOUT_SECONDS)
        with client:
            client.ehlo()
            secure = url.scheme == "smtps"
            if not secure and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
                secure = True
            if user:
                if not secure and host not in LOOPBACK:
                    raise MailError(f"{host} offers no STARTTLS; not sending the password")
                client.login(user, password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"could not send mail through {host}: {exc}") from exc


def send_invitation(to: str, org_name: str, inviter: str, role: str, link: str, hours: int) -> None:
    """Email an invitation link; raise `MailError` on failure."""
    send(
        to,
        f"{inviter} invited you to {org_name} on Voxboard",
        f"{inviter} invited you to join {org_name} on Voxboard as {role}.\n\n"
        f"Open this link to accept (it works once and expires in {hours} hours):\n\n"
        f"{link}\n\n"
        "If you weren't expecting this, you can ignore this message.\n",
    )
