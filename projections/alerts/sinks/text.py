"""The alert as a person reads it (e-mail, Slack, Teams): what happened, which case, when
it is due in the controller's time zone and in UTC, how long is left or how late it is,
and a link to the case's page when a base URL is configured.

Everything is derived from the stored alert document only, and "left" is measured from
the alert's ``emitted_at``, not from the attempt: a retry after a crash sends the same
words, so the receiver sees a repeat, not a second, different alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from ledger.clock import parse_rfc3339
from projections.legal.rights import zone

KIND_LABEL = {"breach": "Breach", "rights_request": "Rights request", "finding": "Finding"}
#: The page of a case under ``base_url`` (the auditor web pages, api/web: ``/c/{c}/…``) and
#: the anchor of the case's row on it.
PAGE = {"breach": "breaches", "rights_request": "rights-requests", "finding": "findings"}
ANCHOR = {"breach": "breach-", "rights_request": "request-"}


@dataclass(frozen=True, slots=True)
class Readable:
    subject: str  # one line: the e-mail Subject, the chat title
    headline: str  # the alert's own message
    facts: list[tuple[str, str]]  # label, value: the body's table
    link: str | None

    def text(self) -> str:
        """Plain-text body: headline, an aligned table of facts, the link."""
        width = max((len(k) for k, _ in self.facts), default=0) + 1
        lines = [self.headline, ""]
        lines += [f"{(k + ':').ljust(width)} {v}" for k, v in self.facts]
        if self.link:
            lines += ["", f"Open: {self.link}"]
        lines += ["", "Sent by auditledger. A message with the same alert id is a repeat of this"
                  " alert, not a new one."]
        return "\n".join(lines) + "\n"


def span(delta: timedelta) -> str:
    """A duration for people: ``3 days 4 hours``, ``5 hours 10 minutes``, ``7 minutes``."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rem = divmod(minutes, 24 * 60)
    hours, mins = divmod(rem, 60)

    def unit(n: int, word: str) -> str:
        return f"{n} {word}{'s' * (n != 1)}"

    if days:
        return unit(days, "day") + (f" {unit(hours, 'hour')}" if hours else "")
    if hours:
        return unit(hours, "hour") + (f" {unit(mins, 'minute')}" if mins else "")
    return unit(mins, "minute")


def _when(at: datetime, tz: str) -> str:
    local = at.astimezone(zone(tz))
    utc = at.astimezone(UTC)
    if tz == "UTC":
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M} {tz} ({utc:%Y-%m-%d %H:%M} UTC)"


def link(alert: dict[str, Any], base_url: str | None) -> str | None:
    if not base_url:
        return None
    page = PAGE.get(alert["kind"], "")
    path = f"/c/{quote(alert['controller'], safe='')}/{page}"
    anchor = ANCHOR.get(alert["kind"])
    if anchor is not None:
        path += f"#{anchor}{quote(str(alert['case']), safe='')}"
    return base_url.rstrip("/") + path


def readable(alert: dict[str, Any], base_url: str | None = None) -> Readable:
    """The person-facing rendering of one emitted alert."""
    kind, case, ctl = alert["kind"], str(alert["case"]), alert["controller"]
    tz = alert.get("timezone") or "UTC"
    label = KIND_LABEL.get(kind, kind)
    facts: list[tuple[str, str]] = [("Controller", ctl)]
    status = ""
    if kind == "finding":
        facts += [("Finding", str(alert.get("code"))), ("Severity", str(alert.get("severity")))]
        if alert.get("evidence"):
            facts.append(("Evidence", ", ".join(alert["evidence"][:20])))
        status = f"{alert.get('code')} ({alert.get('severity')})"
        subject_case = case.split(":", 1)[-1] if ":" in case else case
    else:
        subject_case = case
        facts.append(("Case", f"{label.lower()} {case}"))
        if kind == "rights_request":
            facts += [("Right", str(alert.get("right"))),
                      ("Subject", str(alert.get("subject")))]
        deadline = {"authority_due": "notify the supervisory authority",
                    "binding_due": "answer the data subject",
                    "due": "legal deadline", "extended_due": "extended legal deadline"}
        facts.append(("Deadline", deadline.get(str(alert.get("deadline")),
                                               str(alert.get("deadline")))))
        if alert.get("deadline_at"):
            due = parse_rfc3339(alert["deadline_at"])
            facts.append(("Due", _when(due, tz)))
            if alert.get("deadline_date"):
                facts.append(("Due date", f"{alert['deadline_date']} (end of day, {tz})"))
            sent = parse_rfc3339(alert.get("emitted_at") or alert["due_at"])
            if sent >= due:
                status = f"overdue by {span(sent - due)}" if sent > due else "due now"
                facts.append(("Overdue by", span(sent - due)))
            else:
                status = f"{span(due - sent)} left"
                facts.append(("Time left", span(due - sent)))
    facts.append(("Threshold", str(alert["threshold"])))
    facts.append(("Alert id", str(alert["id"])))
    subject = f"[auditledger] {label} {subject_case}: {status} - {ctl}"
    return Readable(subject[:250], str(alert.get("message") or subject), facts,
                    link(alert, base_url))
