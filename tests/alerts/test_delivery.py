"""Channels against real receivers on 127.0.0.1: message contents, TLS and AUTH, retries,
timeouts, isolation between channels, and secrets staying out of the logs."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from sysmon.alerts.config import AlertsConfig, EmailChannelConfig
from sysmon.alerts.notifiers.base import DeliveryError, Notification
from sysmon.alerts.notifiers.email import EmailNotifier
from sysmon.alerts.notifiers.slack import SlackNotifier
from sysmon.alerts.notifiers.webhook import WebhookNotifier
from sysmon.alerts.service import AlertService
from sysmon.clock import FakeClock
from sysmon.errors import ConfigError
from tests.alerts.helpers import (
    DASHBOARD,
    HOST,
    Ticker,
    alerts_config,
    email_channel,
    make_service,
    url_channel,
)
from tests.alerts.receivers import HttpReceiver, SmtpReceiver, free_port, smtp_server, wait_for

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxsecrettoken"


def note(kind: str = "firing", **over: Any) -> Notification:
    data: dict[str, Any] = {
        "kind": kind,
        "rule": "disk_high",
        "severity": "critical",
        "metric": "disk.percent",
        "operator": ">",
        "threshold": 85.0,
        "value": 91.25,
        "labels": {"mount": "/var"},
        "since": 1_800_000_000.0,
        "timestamp": 1_800_000_000.0 + 754,
        "hostname": HOST,
        "dashboard_url": DASHBOARD,
        "description": "Disk usage above 85 % on a mount",
    }
    data.update(over)
    return Notification(**data)


def email_cfg(port: int, **extra: Any) -> EmailChannelConfig:
    return EmailChannelConfig.model_validate(email_channel(port, **extra))


# --- message contents ------------------------------------------------------------------


def test_email_has_every_recipient_subject_plain_text_and_html(smtp: SmtpReceiver) -> None:
    EmailNotifier("email", email_cfg(smtp.port), None).send(note())
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail.mail_from == "sysmon@example.com"
    assert mail.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert mail.message["To"] == "ops@example.com, oncall@example.com"
    assert mail.subject == (
        "[sysmon] [FIRING] disk_high on web1 (mount=/var): disk.percent 91.2 > 85.0"
    )
    plain = mail.part("plain")
    for line in (
        "Status: FIRING",
        "Host: web1",
        "Rule: disk_high",
        "Severity: critical",
        "Metric: disk.percent (mount=/var)",
        "Value: 91.2",
        "Threshold: > 85.0",
        "Duration: 12m34s",
        f"Dashboard: {DASHBOARD}",
    ):
        assert line in plain
    html = mail.part("html")
    assert "<th align='left'>Rule</th><td>disk_high</td>" in html
    assert f"<a href='{DASHBOARD}'>" in html


def test_slack_message_is_readable(http: HttpReceiver) -> None:
    SlackNotifier("slack", http.url("/ok/slack"), 5).send(note())
    (body,) = http.bodies("/ok/slack")
    text = body["text"]
    assert text.startswith(":rotating_light: [FIRING] disk_high on web1 (mount=/var)")
    for fact in (
        "*Host:* web1",
        "*Rule:* disk_high",
        "*Value:* 91.2",
        "*Threshold:* > 85.0",
        "*Duration:* 12m34s",
        f"<{DASHBOARD}|Open the dashboard>",
    ):
        assert fact in text
    assert body["blocks"][0]["type"] == "section"


def test_webhook_posts_the_documented_json(http: HttpReceiver) -> None:
    WebhookNotifier("hook", http.url("/ok/hook"), 5).send(note("resolved", value=40.0))
    (body,) = http.bodies("/ok/hook")
    assert body == {
        "version": 1,
        "kind": "resolved",
        "status": "resolved",
        "host": "web1",
        "rule": "disk_high",
        "severity": "critical",
        "metric": "disk.percent",
        "labels": {"mount": "/var"},
        "rule_labels": {},
        "operator": ">",
        "threshold": 85.0,
        "value": 40.0,
        "since": 1_800_000_000.0,
        "timestamp": 1_800_000_754.0,
        "duration_seconds": 754.0,
        "description": "Disk usage above 85 % on a mount",
        "dashboard_url": DASHBOARD,
        "summary": "[RESOLVED] disk_high on web1 (mount=/var): disk.percent 40.0 > 85.0",
    }


# --- SMTP security ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(files: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(files[0]), str(files[1]))
    return ctx


class _Auth:
    def __init__(self) -> None:
        self.logins: list[tuple[str, str]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        ok = data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls_smtp(tls_files: tuple[Path, Path]) -> Iterator[tuple[SmtpReceiver, _Auth]]:
    auth = _Auth()
    with smtp_server(
        tls_context=_server_context(tls_files),
        require_starttls=True,
        authenticator=auth,
        auth_require_tls=True,
    ) as receiver:
        yield receiver, auth


def test_starttls_with_auth_uses_the_password_from_the_environment(
    starttls_smtp: tuple[SmtpReceiver, _Auth],
) -> None:
    smtp, auth = starttls_smtp
    cfg = email_cfg(smtp.port, security="starttls", verify_tls=False, username="alerts")
    password = cfg.resolve_password("email", {"SYSMON_SMTP_PASSWORD": "s3cret-pw"})
    EmailNotifier("email", cfg, password).send(note())
    assert auth.logins == [("alerts", "s3cret-pw")]
    assert [m.rcpt_tos for m in smtp.messages] == [["ops@example.com", "oncall@example.com"]]


def test_wrong_smtp_password_is_a_permanent_failure(
    starttls_smtp: tuple[SmtpReceiver, _Auth],
) -> None:
    smtp, _ = starttls_smtp
    cfg = email_cfg(smtp.port, security="starttls", verify_tls=False, username="alerts")
    with pytest.raises(DeliveryError) as info:
        EmailNotifier("email", cfg, "wrong").send(note())
    assert info.value.retryable is False
    assert "wrong" not in str(info.value)
    assert smtp.messages == []


def test_starttls_verifies_the_certificate_by_default(
    starttls_smtp: tuple[SmtpReceiver, _Auth],
) -> None:
    smtp, _ = starttls_smtp
    with pytest.raises(DeliveryError, match="SSLCertVerificationError"):
        EmailNotifier("email", email_cfg(smtp.port, security="starttls"), None).send(note())


def test_implicit_tls(tls_files: tuple[Path, Path]) -> None:
    with smtp_server(ssl_context=_server_context(tls_files)) as smtp:
        cfg = email_cfg(smtp.port, security="tls", verify_tls=False)
        EmailNotifier("email", cfg, None).send(note())
        assert len(smtp.messages) == 1


# --- secrets ---------------------------------------------------------------------------


def test_missing_secret_environment_variable_is_a_config_error_naming_the_key(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = alerts_config(channels={"slack": url_channel("slack", "SYSMON_SLACK_WEBHOOK_URL")})
    with pytest.raises(ConfigError) as info:
        AlertService.from_settings(config, str(tmp_path / "a.db"), clock, None, HOST, environ={})
    assert info.value.key == "alerts.channels.slack.url_env"
    assert "SYSMON_SLACK_WEBHOOK_URL" in str(info.value)


def test_secrets_are_not_in_the_config_repr() -> None:
    config = alerts_config(
        channels={
            "slack": {"type": "slack", "url": "https://hooks.slack.com" + SECRET_PATH},
            "email": email_channel(25, username="u", password="s3cret-pw"),
        }
    )
    text = repr(config) + str(config.model_dump())
    assert SECRET_PATH not in text and "s3cret-pw" not in text


def test_url_from_the_settings_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    from sysmon.config import load_settings

    monkeypatch.setenv("SYSMON_ALERTS__CHANNELS__SLACK__URL", "https://hooks.example" + SECRET_PATH)
    settings = load_settings(alerts={"channels": {"slack": {"type": "slack"}}})
    channel = settings.alerts.channels["slack"]
    assert channel.type == "slack"
    assert channel.resolve_url("slack", {}) == "https://hooks.example" + SECRET_PATH


# --- failures, retries, isolation ------------------------------------------------------


def _three_channel_service(
    tmp_path: Path,
    clock: FakeClock,
    smtp_port: int,
    http: HttpReceiver,
    hook_path: str,
    **hook: Any,
) -> AlertService:
    config: AlertsConfig = alerts_config(
        rules=[{"name": "cpu_high", "metric": "cpu.percent", "threshold": 80}],
        channels={
            "email": email_channel(smtp_port, retries=1),
            "slack": url_channel("slack", "SLACK_URL"),
            "hook": url_channel("webhook", "HOOK_URL", **hook),
        },
    )
    env = {
        "SLACK_URL": http.url("/ok" + SECRET_PATH),
        "HOOK_URL": http.url(hook_path + SECRET_PATH),
    }
    return make_service(config, str(tmp_path / "a.db"), clock, env)


def test_webhook_500_is_retried_with_backoff_then_given_up_and_logged_without_the_url(
    tmp_path: Path,
    clock: FakeClock,
    smtp: SmtpReceiver,
    http: HttpReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    service = _three_channel_service(
        tmp_path, clock, smtp.port, http, "/fail", retries=2, backoff_seconds=0.05
    )
    try:
        started = time.monotonic()
        Ticker(service, clock).tick(cpu=95.0)
        fail_url = "/fail" + SECRET_PATH
        assert wait_for(lambda: any("giving up" in r.getMessage() for r in caplog.records))
        elapsed = time.monotonic() - started
        assert http.attempts[fail_url] == 3
        assert elapsed >= 0.05 + 0.10  # two backoff waits, doubling
        assert len(smtp.messages) == 1 and len(http.bodies("/ok")) == 1
        (gave_up,) = [r for r in caplog.records if "giving up" in r.getMessage()]
        assert gave_up.levelno == logging.ERROR
        assert "channel=hook" in gave_up.getMessage()
        assert "status=500" in gave_up.getMessage() and "attempts=3" in gave_up.getMessage()
        retries = [r for r in caplog.records if "retrying" in r.getMessage()]
        assert len(retries) == 2
        assert SECRET_PATH not in caplog.text and "SECRET" not in caplog.text
        (entry,) = service.history(0, clock.time())
        assert wait_for(lambda: len(service.history(0, clock.time())[0].deliveries) == 3)
        statuses = {
            (d.channel, d.status, d.attempts, d.error)
            for d in service.history(0, clock.time())[0].deliveries
        }
        assert statuses == {
            ("email", "sent", 1, None),
            ("slack", "sent", 1, None),
            ("hook", "failed", 3, "HTTP 500"),
        }
        assert entry.event.kind == "firing"
    finally:
        service.stop()


def test_hanging_webhook_times_out_and_the_other_channels_deliver_promptly(
    tmp_path: Path,
    clock: FakeClock,
    smtp: SmtpReceiver,
    http: HttpReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    service = _three_channel_service(
        tmp_path, clock, smtp.port, http, "/hang", retries=0, timeout_seconds=1.0
    )
    try:
        started = time.monotonic()
        Ticker(service, clock).tick(cpu=95.0)
        evaluate_seconds = time.monotonic() - started
        assert evaluate_seconds < 0.2  # the collection tick never waits for a channel
        assert wait_for(lambda: len(smtp.messages) == 1 and len(http.bodies("/ok")) == 1, 0.9)
        assert time.monotonic() - started < 0.9  # before the hanging call even timed out
        assert http.attempts.get("/hang" + SECRET_PATH) == 1
        assert wait_for(lambda: any("timed out" in r.getMessage() for r in caplog.records), 5)
        assert 1.0 <= time.monotonic() - started < 4.0
        # The collection path kept going meanwhile: the next ticks are just as fast.
        t = time.monotonic()
        Ticker(service, clock).run(100, cpu=95.0)
        assert time.monotonic() - t < 0.5
        assert SECRET_PATH not in caplog.text
    finally:
        service.stop(timeout=2)


def test_smtp_down_fails_after_retries_and_slack_still_delivers(
    tmp_path: Path,
    clock: FakeClock,
    http: HttpReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    dead_port = free_port()  # nothing listens there
    service = _three_channel_service(tmp_path, clock, dead_port, http, "/ok/hook")
    try:
        Ticker(service, clock).tick(cpu=95.0)
        assert wait_for(lambda: len(http.bodies("/ok")) == 2)
        assert wait_for(lambda: any("giving up" in r.getMessage() for r in caplog.records))
        (gave_up,) = [r for r in caplog.records if "giving up" in r.getMessage()]
        assert "channel=email" in gave_up.getMessage()
        assert "attempts=2" in gave_up.getMessage()
        assert "ConnectionRefusedError" in gave_up.getMessage()
    finally:
        service.stop()


def test_test_message_reaches_the_channel_and_reports_failures(
    tmp_path: Path, clock: FakeClock, smtp: SmtpReceiver, http: HttpReceiver
) -> None:
    service = _three_channel_service(tmp_path, clock, smtp.port, http, "/fail")
    try:
        service.send_test("slack")
        (body,) = http.bodies("/ok")
        assert body["text"].startswith(":information_source: [TEST] sysmon test notification")
        service.send_test("email")
        assert smtp.messages[0].subject == "[sysmon] [TEST] sysmon test notification from web1"
        with pytest.raises(DeliveryError, match="HTTP 500"):
            service.send_test("hook")
        assert http.attempts["/fail" + SECRET_PATH] == 1  # a test is not retried
    finally:
        service.stop()
