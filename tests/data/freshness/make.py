# ruff: noqa: E501
"""Wrote tests/data/freshness (once, before the method was built; the files are committed):
the revised runbook, the facts and announcements docs, the Slack export and questions.json."""

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent

# (id, section, question, v1 sentence, v2 sentence, old value, current value)
RUNBOOK = [
    (
        "rb01",
        "Database",
        "What host is the ledger primary database on?",
        "The ledger primary database runs on pg-main-01.internal.",
        "The ledger primary database runs on pg-main-02.internal.",
        "pg-main-01.internal",
        "pg-main-02.internal",
    ),
    (
        "rb02",
        "Database",
        "Which port do applications use to connect to the ledger database?",
        "Applications connect to the ledger database on port 5432.",
        "Applications connect to the ledger database on port 6432.",
        "5432",
        "6432",
    ),
    (
        "rb03",
        "Database",
        "What is the maximum number of connections for the ledger database?",
        "The ledger database allows at most 200 connections.",
        "The ledger database allows at most 400 connections.",
        "200",
        "400",
    ),
    (
        "rb04",
        "Backups",
        "How long are ledger backups retained?",
        "Ledger backups are retained for 35 days.",
        "Ledger backups are retained for 90 days.",
        "35 days",
        "90 days",
    ),
    (
        "rb05",
        "Backups",
        "At what time do the nightly ledger backups start?",
        "The nightly ledger backups start at 02:00 UTC.",
        "The nightly ledger backups start at 03:30 UTC.",
        "02:00",
        "03:30",
    ),
    (
        "rb06",
        "Deploys",
        "What command deploys the ledger service to production?",
        "Deploy the ledger service to production with `ledgerctl deploy --env prod`.",
        "Deploy the ledger service to production with `ledgerctl release --env prod`.",
        "ledgerctl deploy --env prod",
        "ledgerctl release --env prod",
    ),
    (
        "rb07",
        "Deploys",
        "How do you restart the ledger API?",
        "Restart the ledger API with `systemctl restart ledger-api`.",
        "Restart the ledger API with `kubectl rollout restart deploy/ledger-api`.",
        "systemctl restart ledger-api",
        "kubectl rollout restart deploy/ledger-api",
    ),
    (
        "rb08",
        "Deploys",
        "Which region does the ledger service run in?",
        "The ledger service runs in region us-east-1.",
        "The ledger service runs in region us-east-2.",
        "us-east-1",
        "us-east-2",
    ),
    (
        "rb09",
        "On-call",
        "How long is a ledger on-call rotation?",
        "A ledger on-call rotation lasts 7 days.",
        "A ledger on-call rotation lasts 14 days.",
        "7 days",
        "14 days",
    ),
    (
        "rb10",
        "On-call",
        "Who is the escalation contact for ledger incidents?",
        "The escalation contact for ledger incidents is Priya Raman.",
        "The escalation contact for ledger incidents is Kwame Mensah.",
        "Priya Raman",
        "Kwame Mensah",
    ),
    (
        "rb11",
        "On-call",
        "Which paging service alerts the ledger on-call engineer?",
        "The ledger on-call engineer is alerted through PagerDuty.",
        "The ledger on-call engineer is alerted through Opsgenie.",
        "PagerDuty",
        "Opsgenie",
    ),
    (
        "rb12",
        "Caching",
        "What is the TTL of the ledger balance cache?",
        "The ledger balance cache has a TTL of 300 seconds.",
        "The ledger balance cache has a TTL of 120 seconds.",
        "300 seconds",
        "120 seconds",
    ),
    (
        "rb13",
        "Messaging",
        "Which Kafka topic carries ledger events?",
        "Ledger events are published to the Kafka topic ledger-events.",
        "Ledger events are published to the Kafka topic ledger-events-v2.",
        "ledger-events",
        "ledger-events-v2",
    ),
    (
        "rb14",
        "Messaging",
        "How many partitions does the ledger events topic have?",
        "The ledger events topic has 12 partitions.",
        "The ledger events topic has 24 partitions.",
        "12",
        "24",
    ),
    (
        "rb15",
        "API",
        "What is the rate limit of the ledger API?",
        "The ledger API rate limit is 100 requests per minute per client.",
        "The ledger API rate limit is 250 requests per minute per client.",
        "100",
        "250",
    ),
    (
        "rb16",
        "API",
        "Which endpoint is the ledger API health check?",
        "The ledger API health check endpoint is /healthz.",
        "The ledger API health check endpoint is /livez.",
        "/healthz",
        "/livez",
    ),
    (
        "rb17",
        "API",
        "What is the payment capture timeout?",
        "The payment capture timeout is 30 seconds.",
        "The payment capture timeout is 45 seconds.",
        "30 seconds",
        "45 seconds",
    ),
    (
        "rb18",
        "Observability",
        "How long are ledger logs kept?",
        "Ledger logs are kept for 14 days.",
        "Ledger logs are kept for 30 days.",
        "14 days",
        "30 days",
    ),
    (
        "rb19",
        "Observability",
        "Where is the ledger Grafana dashboard?",
        "The ledger Grafana dashboard is grafana.internal/d/ledger-main.",
        "The ledger Grafana dashboard is grafana.internal/d/ledger-v2.",
        "grafana.internal/d/ledger-main",
        "grafana.internal/d/ledger-v2",
    ),
    (
        "rb20",
        "Security",
        "How often are the ledger TLS certificates rotated?",
        "The ledger TLS certificates are rotated every 90 days.",
        "The ledger TLS certificates are rotated every 60 days.",
        "90 days",
        "60 days",
    ),
    (
        "rb21",
        "Runtime",
        "Which Java version does the ledger service run on?",
        "The ledger service runs on Java 17.",
        "The ledger service runs on Java 21.",
        "17",
        "21",
    ),
    (
        "rb22",
        "Ownership",
        "Which team owns the ledger runbook?",
        "The ledger runbook is owned by the Payments Core team.",
        "The ledger runbook is owned by the Ledger Platform team.",
        "Payments Core",
        "Ledger Platform",
    ),
]


def runbook(version):
    out = ["# Ledger service runbook", ""]
    sections = {}
    for r in RUNBOOK:
        sections.setdefault(r[1], []).append(r[3] if version == 1 else r[4])
    for name, sentences in sections.items():
        out += [f"## {name}", "", " ".join(sentences), ""]
    return "\n".join(out)


# Controls: an older doc sentence, a newer Slack message about something else.
CONTROLS = [
    (
        "c01",
        "Which port does the ledger-api listen on?",
        "The ledger-api listens on port 8080.",
        "The ledger-worker metrics port is now 9102.",
        "8080",
        "9102",
    ),
    (
        "c02",
        "At what time do the analytics database backups run?",
        "Backups of the analytics database run at 01:00 UTC.",
        "Backups of the billing database now run at 04:00 UTC.",
        "01:00",
        "04:00",
    ),
    (
        "c03",
        "What is the staging Redis host?",
        "The staging Redis host is redis-stg-01.",
        "The production Redis host is now redis-prd-03.",
        "redis-stg-01",
        "redis-prd-03",
    ),
    (
        "c04",
        "When does the Q2 code freeze begin?",
        "The Q2 code freeze begins on 2024-06-20.",
        "Reminder: the Q1 code freeze begins on 2024-03-21.",
        "2024-06-20",
        "2024-03-21",
    ),
    (
        "c05",
        "How long is the support rotation?",
        "The support rotation lasts 7 days.",
        "The security rotation now lasts 14 days.",
        "7 days",
        "14 days",
    ),
    (
        "c06",
        "Which region does the EU cluster run in?",
        "The EU cluster runs in eu-west-1.",
        "The US cluster moved to us-west-2 this week.",
        "eu-west-1",
        "us-west-2",
    ),
    (
        "c07",
        "What command generates invoices?",
        "Invoices are generated with `ledgerctl invoice run`.",
        "Refunds are now issued with `ledgerctl refund issue`.",
        "ledgerctl invoice run",
        "ledgerctl refund issue",
    ),
    (
        "c08",
        "Who manages the web team?",
        "The web team is managed by Ines Costa.",
        "The mobile team is now managed by Yuki Tanaka.",
        "Ines Costa",
        "Yuki Tanaka",
    ),
    (
        "c09",
        "What is the row limit of a reports export?",
        "A reports export is limited to 10000 rows.",
        "The reports page size is now 50 rows.",
        "10000",
        "50",
    ),
    (
        "c10",
        "When does a sandbox API key expire?",
        "A sandbox API key expires after 30 days.",
        "A production API key now expires after 365 days.",
        "30 days",
        "365 days",
    ),
    (
        "c11",
        "Which Kafka consumer group does the reconciler use?",
        "The reconciler uses the Kafka consumer group recon-consumers.",
        "The billing service now uses the Kafka consumer group billing-consumers.",
        "recon-consumers",
        "billing-consumers",
    ),
    (
        "c12",
        "When does the on-call handoff happen?",
        "The on-call handoff happens on Mondays at 10:00.",
        "The sprint review now happens on Thursdays at 15:00.",
        "10:00",
        "15:00",
    ),
]

# Doc vs a newer Slack announcement.
ANNOUNCE = [
    (
        "an01",
        "Which Zoom room is the incident bridge?",
        "The incident bridge is Zoom room 555-0100.",
        "Heads up: from today the incident bridge is Zoom room 555-0199.",
        "555-0100",
        "555-0199",
    ),
    (
        "an02",
        "What is the expense approval limit without a manager?",
        "Expenses up to $500 need no manager approval.",
        "Policy change: expenses up to $750 need no manager approval.",
        "$500",
        "$750",
    ),
    (
        "an03",
        "Which VPN client version is required?",
        "The required VPN client version is 4.2.",
        "Update: the required VPN client version is 5.1 as of today.",
        "4.2",
        "5.1",
    ),
    (
        "an04",
        "What is the status page address?",
        "The status page is status.quillhaven.io.",
        "FYI the status page moved: the status page is status.quillhaven.com now.",
        "status.quillhaven.io",
        "status.quillhaven.com",
    ),
]

USERS = {
    "U1": "Ana Lima",
    "U2": "Bo Chen",
    "U3": "Cy Park",
    "U4": "Dee Rossi",
    "U5": "Eli Novak",
    "U6": "Fay Ortiz",
}


def platform_doc():
    lines = ["# Platform facts", ""]
    for c in CONTROLS:
        lines += [f"## {c[1].rstrip('?')}", "", c[2], ""]
    return "\n".join(lines)


def oncall_doc():
    lines = ["# Company handbook: how we work", ""]
    for a in ANNOUNCE:
        lines += [f"## {a[1].rstrip('?')}", "", a[2], ""]
    return "\n".join(lines)


# Threads: (id, cue, question, messages [(user, text, extra)], superseded indexes, current, old)
DAY = 1709251200  # 2024-03-01T00:00Z
THREADS = [
    (
        "th01",
        "actually",
        "Which port does the ledger read replica accept connections on?",
        [
            ("U4", "Which port does the ledger read replica accept connections on?", {}),
            ("U3", "The ledger read replica accepts connections on port 5433.", {}),
            (
                "U3",
                "Actually, use pgbouncer: the read replica accepts connections on port 6433, not 5433 directly.",
                {},
            ),
        ],
        [1],
        "6433",
        "5433",
    ),
    (
        "th02",
        "correction",
        "When does the March deploy freeze start?",
        [
            ("U5", "When does the March deploy freeze start?", {}),
            ("U2", "The March deploy freeze starts Friday at 17:00 UTC.", {}),
            ("U2", "Correction: the March deploy freeze starts Friday at 15:00 UTC.", {}),
        ],
        [1],
        "15:00",
        "17:00",
    ),
    (
        "th03",
        "no longer",
        "Which host runs the ledger staging environment?",
        [
            ("U6", "Which host runs the ledger staging environment?", {}),
            ("U1", "The ledger staging environment runs on stg-ledger-01.", {}),
            (
                "U3",
                "stg-ledger-01 is no longer used; the ledger staging environment runs on stg-ledger-07.",
                {},
            ),
        ],
        [1],
        "stg-ledger-07",
        "stg-ledger-01",
    ),
    (
        "th04",
        "instead of",
        "How do I resync the ledger search index?",
        [
            ("U4", "How do I resync the ledger search index?", {}),
            ("U2", "Resync the ledger search index with `ledgerctl index sync --full`.", {}),
            (
                "U1",
                "Use `ledgerctl index sync --incremental` instead of --full, the full sync locks the table.",
                {},
            ),
        ],
        [1],
        "ledgerctl index sync --incremental",
        "ledgerctl index sync --full",
    ),
    (
        "th05",
        "reaction",
        "What batch size does the settlement job use?",
        [
            ("U5", "What batch size does the settlement job use?", {}),
            ("U3", "The settlement job uses a batch size of 500.", {}),
            (
                "U1",
                "The settlement job uses a batch size of 1000 since the February release.",
                {"reactions": [{"name": "white_check_mark", "users": ["U5"], "count": 1}]},
            ),
        ],
        [1],
        "1000",
        "500",
    ),
    (
        "th06",
        "thanks",
        "Which VPN gateway should the Lisbon office use?",
        [
            ("U6", "Which VPN gateway should the Lisbon office use?", {}),
            ("U2", "The Lisbon office should use the VPN gateway vpn1.quillhaven.io.", {}),
            ("U4", "The Lisbon office should use the VPN gateway vpn3.quillhaven.io.", {}),
            ("U6", "vpn3 worked, thanks!", {}),
        ],
        [1],
        "vpn3.quillhaven.io",
        "vpn1.quillhaven.io",
    ),
    (
        "th07",
        "edit",
        "At what time does the ledger retention job run?",
        [
            ("U5", "At what time does the ledger retention job run?", {}),
            (
                "U1",
                "The ledger retention job runs at 04:00 UTC, I checked the cron.",
                {"edit_after": 2},
            ),
            ("U2", "I think the ledger retention job runs at 05:00 UTC.", {}),
        ],
        [2],
        "04:00",
        "05:00",
    ),
    (
        "th08",
        "actually",
        "How many replicas does the ledger-api deployment run?",
        [
            ("U4", "How many replicas does the ledger-api deployment run?", {}),
            ("U2", "The ledger-api deployment runs 6 replicas.", {}),
            (
                "U2",
                "Actually the ledger-api deployment runs 8 replicas since the autoscaler change.",
                {},
            ),
        ],
        [1],
        "8",
        "6",
    ),
    (
        "th09",
        "correction",
        "What is the ledger sandbox URL?",
        [
            ("U6", "What is the ledger sandbox URL?", {}),
            ("U3", "The ledger sandbox URL is sandbox.ledger.quillhaven.io.", {}),
            ("U3", "Correction: the ledger sandbox URL is sbx.ledger.quillhaven.io.", {}),
        ],
        [1],
        "sbx.ledger.quillhaven.io",
        "sandbox.ledger.quillhaven.io",
    ),
    (
        "th10",
        "thanks",
        "Which Slack channel takes ledger access requests?",
        [
            ("U5", "Which Slack channel takes ledger access requests?", {}),
            ("U1", "Ledger access requests go to #ledger-access.", {}),
            ("U3", "Ledger access requests go to #platform-access now.", {}),
            ("U5", "Thanks Cy, #platform-access it is.", {}),
        ],
        [1],
        "#platform-access",
        "#ledger-access",
    ),
]
# Threads where a cue appears but nothing is corrected (precision of the cues).
NEGATIVE = [
    (
        "ng01",
        "actually",
        "How many workers does the ledger exporter run?",
        [
            ("U4", "How many workers does the ledger exporter run?", {}),
            ("U2", "The ledger exporter runs 4 workers.", {}),
            (
                "U4",
                "Actually one more question: where is the exporter config? Thanks for the 4 workers.",
                {},
            ),
            ("U2", "The exporter config lives in deploy/exporter.yaml.", {}),
        ],
        [],
        "4",
        None,
    ),
    (
        "ng02",
        "instead of",
        "Which pager do we use for ledger alerts instead of email?",
        [
            ("U6", "Which pager do we use for ledger alerts instead of email?", {}),
            ("U1", "Ledger alerts page through Opsgenie instead of email.", {}),
        ],
        [],
        "Opsgenie",
        None,
    ),
    (
        "ng03",
        "reaction",
        "What is the ledger archive bucket?",
        [
            ("U5", "What is the ledger archive bucket?", {}),
            (
                "U3",
                "The ledger archive bucket is s3://ledger-archive-prod.",
                {"reactions": [{"name": "white_check_mark", "users": ["U5"], "count": 1}]},
            ),
            (
                "U2",
                "The staging archive bucket is s3://ledger-archive-stg, if you need that too.",
                {},
            ),
        ],
        [],
        "s3://ledger-archive-prod",
        None,
    ),
    (
        "ng04",
        "thanks",
        "How long does a ledger reindex take?",
        [
            ("U6", "How long does a ledger reindex take?", {}),
            ("U1", "A ledger reindex takes about 40 minutes.", {}),
            ("U6", "Thanks! And the reconciler restart takes 5 minutes, right?", {}),
            ("U1", "Yes, the reconciler restart takes 5 minutes.", {}),
        ],
        [],
        "40 minutes",
        None,
    ),
    (
        "ng05",
        "no longer",
        "Is the old ledger admin UI still available?",
        [
            ("U4", "Is the old ledger admin UI still available?", {}),
            (
                "U3",
                "The old ledger admin UI is no longer available; use admin.ledger.quillhaven.io.",
                {},
            ),
        ],
        [],
        "admin.ledger.quillhaven.io",
        None,
    ),
    (
        "ng06",
        "edit",
        "What is the ledger API base path?",
        [
            ("U5", "What is the ledger API base path?", {}),
            ("U2", "The ledger API base path is /api/v3.", {"edit_after": 1}),
            ("U5", "Got it, /api/v3.", {}),
        ],
        [],
        "/api/v3",
        None,
    ),
]


def ts(t, i=0):
    return f"{t}.{100 + i:06d}"


def export():
    root = OUT / "slack"
    files = {}
    truth = []
    for k, (tid, cue, q, msgs, sup, cur, old) in enumerate(THREADS + NEGATIVE):
        t0 = DAY + k * 86400 // 4 + 3600 * 9
        stamps = [ts(t0 + 300 * i, i) for i in range(len(msgs))]
        out = []
        for i, (user, text, extra) in enumerate(msgs):
            m = {
                "type": "message",
                "user": user,
                "text": text,
                "ts": stamps[i],
                "thread_ts": stamps[0],
            }
            if i == 0:
                m["reply_count"] = len(msgs) - 1
            if "reactions" in extra:
                m["reactions"] = extra["reactions"]
            if "edit_after" in extra:
                m["edited"] = {"user": user, "ts": ts(t0 + 300 * extra["edit_after"] + 120, 0)}
            out.append(m)
        day = f"2024-03-{1 + (t0 - DAY) // 86400:02d}"
        files.setdefault(("ledger-help", day), []).extend(out)
        truth.append(
            {
                "id": tid,
                "cue": cue,
                "question": q,
                "thread_ts": stamps[0],
                "superseded": [stamps[i] for i in sup],
                "current": cur,
                "older": old,
            }
        )
    # Announcements (2024-03-12) and the controls' newer messages (2024-03-15): loose messages.
    ann = DAY + 11 * 86400 + 3600 * 14
    for i, a in enumerate(ANNOUNCE):
        files.setdefault(("announcements", "2024-03-12"), []).append(
            {"type": "message", "user": "U1", "text": a[3], "ts": ts(ann + 7200 * i, i)}
        )
    ctl = DAY + 14 * 86400 + 3600 * 10
    for i, c in enumerate(CONTROLS):
        files.setdefault(("eng", "2024-03-15"), []).append(
            {"type": "message", "user": "U2", "text": c[3], "ts": ts(ctl + 7200 * i, i)}
        )
    for (channel, day), msgs in files.items():
        path = root / channel / f"{day}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(msgs, indent=1) + "\n")
    channels = [
        {"id": f"C0{i}", "name": n, "created": 1700000000, "members": list(USERS)}
        for i, n in enumerate(["ledger-help", "announcements", "eng"], 1)
    ]
    (root / "channels.json").write_text(json.dumps(channels, indent=1) + "\n")
    users = [
        {
            "id": u,
            "name": n.split()[0].lower(),
            "real_name": n,
            "is_bot": False,
            "profile": {"display_name": n, "real_name": n},
        }
        for u, n in USERS.items()
    ]
    (root / "users.json").write_text(json.dumps(users, indent=1) + "\n")
    return truth


def main():
    (OUT / "repo" / "v1").mkdir(parents=True, exist_ok=True)
    (OUT / "repo" / "v2").mkdir(parents=True, exist_ok=True)
    (OUT / "repo" / "v1" / "ledger-runbook.md").write_text(runbook(1))
    (OUT / "repo" / "v2" / "ledger-runbook.md").write_text(runbook(2))
    (OUT / "repo" / "v1" / "platform-facts.md").write_text(platform_doc())
    (OUT / "repo" / "v1" / "how-we-work.md").write_text(oncall_doc())
    truth = export()
    questions = []
    for r in RUNBOOK:
        questions.append(
            {"id": r[0], "kind": "runbook", "question": r[2], "current": r[6], "older": r[5]}
        )
    for t in truth:
        if t["superseded"]:
            questions.append(
                {
                    "id": t["id"],
                    "kind": "thread",
                    "question": t["question"],
                    "current": t["current"],
                    "older": t["older"],
                    "cue": t["cue"],
                }
            )
    for a in ANNOUNCE:
        questions.append(
            {"id": a[0], "kind": "announcement", "question": a[1], "current": a[5], "older": a[4]}
        )
    for c in CONTROLS:
        questions.append(
            {"id": c[0], "kind": "control", "question": c[1], "current": c[4], "newer_other": c[5]}
        )
    data = {
        "about": "Freshness fixture (docs/freshness.md): questions written before the method was built; "
        "`current` is the value a right answer gives.",
        "commits": [
            {
                "when": "2024-01-10T09:00:00+00:00",
                "author": "Ana Lima",
                "message": "ledger runbook, platform facts, how we work",
                "files": {
                    "runbooks/ledger.md": "repo/v1/ledger-runbook.md",
                    "wiki-export/ledger-runbook.md": "repo/v1/ledger-runbook.md",
                    "docs/platform-facts.md": "repo/v1/platform-facts.md",
                    "docs/how-we-work.md": "repo/v1/how-we-work.md",
                },
            },
            {
                "when": "2024-03-08T10:00:00+00:00",
                "author": "Bo Chen",
                "message": "ledger runbook: March revision",
                "files": {"runbooks/ledger.md": "repo/v2/ledger-runbook.md"},
            },
        ],
        "questions": questions,
        "threads": truth,
    }
    (OUT / "questions.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(
        len([q for q in questions if q["kind"] != "control"]),
        "superseded;",
        len([q for q in questions if q["kind"] == "control"]),
        "controls",
    )


if __name__ == "__main__":
    main()
