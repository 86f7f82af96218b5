"""A controller's first half of 2026 with answers known by hand, for the report tests.

Period asked for: 2026-01-01 to 2026-05-01 (end excluded); the report is made on
2026-08-01 (``REPORT_NOW``). What happens outside the period (Dave's consent in June, the
request and the breach of June/July) must not be counted in the period figures, but
Dave's consent is in force on the report's day.

Rights requests in the period (received 10:00 UTC, answered 10:00 UTC: the local dates in
Oslo are the UTC dates): days to answer 10, 41, 52 (extended), 2, one still open — median
25.5, p95 (nearest rank 4 of 4) 52, on time 3 of 4 (the 41-day answer missed its 1-month
deadline), one extension. Weekly histogram bins: 52 // 7 + 1 = 8.

Consents in the period: 4 given (one per purpose: Alice marketing, Bob marketing and
profiling, Carol profiling, which expired on 2026-02-20), 1 withdrawn (Alice marketing);
months (Oslo) 2026-01, 2026-02, 2026-03. On the report's day: marketing 2 in force (Bob,
Dave), 1 withdrawn; profiling 1 in force, 1 expired.

Breaches in the period: ``br-1`` detected, aware, assessed, notified in 48 h (4
milestones); ``br-2`` detected and aware, never assessed nor notified (2 milestones,
overdue).

Transfers in the period: US/dpf to a DPF-certified recipient (valid), IN/none (invalid).
"""

from __future__ import annotations

from datetime import UTC, datetime

from projection_streams import ACTIVITIES, RECIPIENTS, Scenario

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 5, 1, tzinfo=UTC)
REPORT_NOW = datetime(2026, 8, 1, 12, tzinfo=UTC)

DAYS = [10, 41, 52, 2]


def t(s: str) -> str:
    return s if s.endswith("Z") else s + "Z"


def build(s: Scenario) -> None:
    jan = "2026-01-02T09:00:00Z"
    for r in RECIPIENTS:
        s.add("recipient.registered", r, jan)
    for a in ACTIVITIES:
        s.add("processing_activity.declared", a, jan)
    # consents
    s.add("consent.given", {"purposes": ["marketing"], "method": "web_banner",
                            "notice_version": "v3", "evidence_ref": "ev-a"},
          "2026-01-10T10:00:00Z", "alice")
    s.add("consent.given", {"purposes": ["marketing", "profiling"], "method": "app",
                            "notice_version": "v3", "evidence_ref": "ev-b"},
          "2026-02-03T10:00:00Z", "bob")
    s.add("consent.given", {"purposes": ["profiling"], "method": "web_banner",
                            "notice_version": "v3", "evidence_ref": "ev-c",
                            "expires_at": "2026-02-20T00:00:00Z"},
          "2026-02-01T10:00:00Z", "carol")
    s.add("consent.withdrawn", {"purposes": ["marketing"], "method": "account_page"},
          "2026-03-01T10:00:00Z", "alice")
    s.add("consent.given", {"purposes": ["marketing"], "method": "app", "notice_version": "v4",
                            "evidence_ref": "ev-d"}, "2026-06-01T10:00:00Z", "dave")
    # rights requests
    def received(rid: str, right: str, at: str, who: str) -> None:
        s.add("rights_request.received", {"request_id": rid, "right": right, "received_at": at},
              at, who)

    received("r1", "access", "2026-01-05T10:00:00Z", "alice")
    s.add("rights_request.fulfilled", {"request_id": "r1", "at": "2026-01-15T10:00:00Z"},
          "2026-01-15T10:00:00Z", "alice")
    received("r2", "erasure", "2026-01-10T10:00:00Z", "bob")
    s.add("rights_request.fulfilled", {"request_id": "r2", "at": "2026-02-20T10:00:00Z"},
          "2026-02-20T10:00:00Z", "bob")
    received("r3", "access", "2026-02-01T10:00:00Z", "carol")
    s.add("rights_request.extended", {"request_id": "r3", "reason": "complex",
                                      "subject_informed_at": "2026-02-05T10:00:00Z"},
          "2026-02-05T10:00:00Z", "carol")
    s.add("rights_request.fulfilled", {"request_id": "r3", "at": "2026-03-25T10:00:00Z"},
          "2026-03-25T10:00:00Z", "carol")
    received("r4", "objection", "2026-02-10T10:00:00Z", "dave")
    s.add("rights_request.refused", {"request_id": "r4", "at": "2026-02-12T10:00:00Z",
                                     "reason": "manifestly unfounded",
                                     "complaint_right_informed": True},
          "2026-02-12T10:00:00Z", "dave")
    received("r5", "access", "2026-03-01T10:00:00Z", "erin")
    received("r6", "access", "2026-06-01T10:00:00Z", "frank")  # outside the period
    s.add("rights_request.fulfilled", {"request_id": "r6", "at": "2026-06-03T10:00:00Z"},
          "2026-06-03T10:00:00Z", "frank")
    # breaches
    s.add("breach.detected", {"breach_id": "br-1", "detected_at": "2026-01-20T08:00:00Z",
                              "description": "laptop lost"}, "2026-01-20T08:00:00Z")
    s.add("breach.aware", {"breach_id": "br-1", "aware_at": "2026-01-20T10:00:00Z"},
          "2026-01-20T10:00:00Z")
    s.add("breach.assessed", {"breach_id": "br-1", "risk": "risk", "subjects_approx": 10,
                              "records_approx": 20, "data_categories": ["contact"]},
          "2026-01-21T10:00:00Z")
    s.add("breach.notified_authority", {"breach_id": "br-1", "authority": "Datatilsynet",
                                        "notified_at": "2026-01-22T10:00:00Z",
                                        "phase": "initial"}, "2026-01-22T10:00:00Z")
    s.add("breach.detected", {"breach_id": "br-2", "detected_at": "2026-03-10T10:00:00Z",
                              "description": "mis-sent e-mail"}, "2026-03-10T10:00:00Z")
    s.add("breach.aware", {"breach_id": "br-2", "aware_at": "2026-03-10T12:00:00Z"},
          "2026-03-10T12:00:00Z")
    s.add("breach.detected", {"breach_id": "br-3", "detected_at": "2026-07-01T10:00:00Z",
                              "description": "outside the period"}, "2026-07-01T10:00:00Z")
    # transfers
    s.add("transfer.made", {"recipient_id": "rcp-mailer", "destination_country": "US",
                            "mechanism": "dpf", "data_categories": ["contact"]},
          "2026-02-01T10:00:00Z")
    s.add("transfer.made", {"recipient_id": "rcp-support", "destination_country": "IN",
                            "mechanism": "none", "data_categories": ["contact"]},
          "2026-02-02T10:00:00Z")
    s.add("transfer.made", {"recipient_id": "rcp-support", "destination_country": "IN",
                            "mechanism": "none", "data_categories": ["contact"]},
          "2026-06-02T10:00:00Z")  # outside the period
