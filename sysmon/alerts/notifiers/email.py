"""SMTP e-mail: STARTTLS (587), implicit TLS (465) or plain (25, for a local relay);
optional AUTH; several recipients; a plain-text part plus an HTML alternative.

A new connection per message: alerts are rare, and a long-lived SMTP session would time
out on the server between them anyway.
"""

from __future__ import annotations

import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sysmon.alerts.config import EmailChannelConfig
from sysmon.alerts.notifiers.base import DeliveryError, Notification, html_body, subject, text_body

_POLICY = policy.SMTP.clone(max_line_length=998)


def build_message(cfg: EmailChannelConfig, n: Notification) -> EmailMessage:
    # Long subjects would otherwise be folded before their first word (an email-package
    # quirk) and arrive with a leading space; 998 is RFC 5322's hard line limit.
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = f"{cfg.subject_prefix} {subject(n)}".strip()
    msg["From"] = cfg.from_
    msg["To"] = ", ".join(cfg.to)
    msg["Date"] = formatdate(n.timestamp, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=n.hostname or None)
    msg.set_content(text_body(n))
    msg.add_alternative(html_body(n), subtype="html")
    return msg


class EmailNotifier:
    def __init__(self, name: str, cfg: EmailChannelConfig, password: str | None) -> None:
        self.name = name
        self._cfg = cfg
        self._password = password

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self._cfg.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def send(self, notification: Notification) -> None:
        cfg = self._cfg
        msg = build_message(cfg, notification)
        timeout = cfg.timeout_seconds
        try:
            smtp: smtplib.SMTP
            if cfg.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    cfg.host, cfg.effective_port(), timeout=timeout, context=self._tls_context()
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.effective_port(), timeout=timeout)
            with smtp:
                if cfg.security == "starttls":
                    smtp.starttls(context=self._tls_context())
                if cfg.username is not None and self._password is not None:
                    smtp.login(cfg.username, self._password)
                smtp.send_message(msg, from_addr=cfg.from_, to_addrs=list(cfg.to))
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP authentication failed ({exc.smtp_code})",
                retryable=False,
                status=exc.smtp_code,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"SMTP recipients refused: {', '.join(sorted(exc.recipients))}", retryable=False
            ) from None
        except smtplib.SMTPResponseException as exc:
            retryable = exc.smtp_code < 500
            raise DeliveryError(
                f"SMTP error {exc.smtp_code}", retryable=retryable, status=exc.smtp_code
            ) from None
        except TimeoutError:
            raise DeliveryError(f"SMTP timed out after {timeout:g}s") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        return None
