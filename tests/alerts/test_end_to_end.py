"""The issue's done-when: with the default rules, CPU held above 80 % for 5 minutes gives
exactly one e-mail and one Slack message, one of each when it ends, and both events are
in the history. Fake clock, real SMTP and HTTP receivers, real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

from sysmon.clock import FakeClock
from tests.alerts.helpers import (
    DASHBOARD,
    HOST,
    Ticker,
    alerts_config,
    email_channel,
    make_service,
    url_channel,
)
from tests.alerts.receivers import HttpReceiver, SmtpReceiver, wait_for


def test_cpu_above_80_for_5_minutes_sends_one_email_and_one_slack_then_resolves(
    tmp_path: Path, clock: FakeClock, smtp: SmtpReceiver, http: HttpReceiver
) -> None:
    config = alerts_config(
        channels={
            "email": email_channel(smtp.port),
            "slack": url_channel("slack", "SYSMON_SLACK_WEBHOOK_URL"),
        }
    )  # rules: the defaults
    assert [r.name for r in config.rules] == ["cpu_high", "memory_high", "disk_high"]
    env = {"SYSMON_SLACK_WEBHOOK_URL": http.url("/ok/slack/T000/B000/secret")}
    service = make_service(config, str(tmp_path / "sysmon.db"), clock, env)
    ticks = Ticker(service, clock)
    normal = {"memory": 40.0, "mounts": {"/": 50.0, "/var": 60.0}}
    try:
        ticks.run(60, cpu=20.0, **normal)
        start = clock.time() + 1
        # 300 one-second ticks above 80 %: the first breach starts the 5 min, which has
        # not elapsed yet at the 300th sample (299 s later).
        ticks.run(300, cpu=93.0, **normal)
        assert [a.state for a in service.active()] == ["pending"]
        assert smtp.messages == [] and http.bodies("/ok/slack") == []
        ticks.tick(cpu=93.0, **normal)
        assert [a.state for a in service.active()] == ["firing"]
        assert wait_for(lambda: len(smtp.messages) == 1 and len(http.bodies("/ok/slack")) == 1)

        ticks.run(600, cpu=95.0, **normal)  # still high for 10 more minutes: no repeat yet
        ticks.run(120, cpu=15.0, **normal)  # back to normal: resolves after recovery_for
        assert service.active() == []
        assert wait_for(lambda: len(smtp.messages) == 2 and len(http.bodies("/ok/slack")) == 2)
        time.sleep(0.2)  # nothing else is on its way
        assert len(smtp.messages) == 2
        assert len(http.bodies("/ok/slack")) == 2

        firing_mail, resolved_mail = smtp.messages
        assert firing_mail.rcpt_tos == ["ops@example.com", "oncall@example.com"]
        assert firing_mail.subject == (
            f"[sysmon] [FIRING] cpu_high on {HOST}: cpu.percent 93.0 > 80.0"
        )
        assert "Duration: 5m" in firing_mail.part("plain")
        assert DASHBOARD in firing_mail.part("html")
        assert resolved_mail.subject.startswith(f"[sysmon] [RESOLVED] cpu_high on {HOST}")
        assert "Value: 15.0" in resolved_mail.part("plain")

        firing_slack, resolved_slack = http.bodies("/ok/slack")
        assert "FIRING" in firing_slack["text"] and "RESOLVED" in resolved_slack["text"]

        history = service.history(start, clock.time())
        assert [(h.event.kind, h.event.rule) for h in history] == [
            ("firing", "cpu_high"),
            ("resolved", "cpu_high"),
        ]
        assert history[0].event.timestamp == start + 300
        assert history[1].event.value == 15.0
        assert wait_for(
            lambda: all(len(h.deliveries) == 2 for h in service.history(start, clock.time()))
        )
        for entry in service.history(start, clock.time()):
            assert sorted((d.channel, d.status) for d in entry.deliveries) == [
                ("email", "sent"),
                ("slack", "sent"),
            ]
    finally:
        service.stop()
