#!/usr/bin/env python3
"""Generate the PDF and DOCX files of the example handbook (examples/handbook/).

The Markdown, HTML and text documents are checked in as-is; the binary ones are
built from the text below so that they can be reviewed and edited in git.

Usage:  python scripts/make_example_docs.py        (needs fpdf2 and python-docx)

Each document is a title plus a list of (heading, blocks) sections. A block is
  - a str:                 a paragraph
  - a list of str:         a bulleted list
  - ("steps", [str, ...]): a numbered list
  - ("table", [[...], ...]): a table whose first row is the header (DOCX only)
PDF text must stay within latin-1 (core Helvetica font).
"""

from datetime import UTC, datetime
from pathlib import Path

from docx import Document
from fpdf import FPDF

OUT = Path(__file__).resolve().parent.parent / "examples" / "handbook"

# The document text is laid out by hand, so keep the formatter away from it.
# fmt: off
PDF_DOCS = {
    "policies/expenses.pdf": ("Expenses Policy", [
        ("Overview", [
            "Owner: Finance. This policy explains which work-related costs Larkspur "
            "Labs pays for, how to claim them and who approves them. When in doubt, "
            "ask in #finance-help before you spend.",
        ]),
        ("Eligible expenses", [
            ["Travel to customer sites, company offsites and approved conferences.",
             "Books, online courses and conference tickets (see Education allowance).",
             "Home office equipment and monthly internet (see Home office stipend).",
             "Software for work that is not already provided, with manager approval."],
            "You cannot expense commuting to your usual office, traffic or parking "
            "fines, or personal entertainment.",
        ]),
        ("Receipts and reimbursement", [
            ("steps", [
                "Submit every claim in Ramp within 30 days of the purchase.",
                "Attach an itemised receipt for anything over $25.",
                "Company card holders must upload receipts within 7 days of the charge.",
                "Claims approved by the 20th of a month are reimbursed with that month's payroll.",
            ]),
        ]),
        ("Approval limits", [
            ["Up to $1,000: your manager approves.",
             "$1,000 to $5,000: your manager and your department head approve.",
             "Above $5,000: the Chief Financial Officer must approve before you buy."],
        ]),
        ("Travel", [
            "Book flights and hotels through Navan so that we can find you in an "
            "emergency. Fly economy for flights under 6 hours; premium economy is "
            "allowed for longer flights. Hotels are capped at $250 per night in the "
            "US and EUR 180 per night in Europe. Meals are covered by a per diem of "
            "$75 per day in the US and EUR 65 per day in Europe; no receipts are "
            "needed for per diem.",
        ]),
        ("Home office stipend", [
            "New employees receive a one-time home office stipend of $750, to be "
            "spent within their first 90 days on items such as a desk, chair or "
            "monitor. Everyone who works from home at least two days a week can "
            "also claim up to $50 per month for internet, submitted once a quarter.",
        ]),
        ("Education allowance", [
            "Each employee has an education allowance of $1,500 per calendar year for "
            "books, courses and conference tickets. Unused budget does not roll "
            "over. Travel to a conference comes out of your team's travel budget, "
            "not your education allowance.",
        ]),
    ]),
    "policies/oncall-compensation.pdf": ("On-call Rotation and Compensation", [
        ("Eligibility", [
            "Engineers in the Platform, Routing, Tracking, Billing and SRE teams join "
            "their team's on-call rotation after three months at Larkspur. Being on "
            "call is part of the job, and we pay for it.",
        ]),
        ("Rotation rules", [
            ["Rotations are weekly, with a primary and a secondary engineer.",
             "Handover happens every Monday at 10:00 Pacific in #oncall-handover.",
             "Nobody is primary for more than one week in four.",
             "New engineers shadow two full rotations before their first primary week.",
             "Swaps are agreed with a colleague, entered as a PagerDuty override and "
             "announced in #oncall-handover."],
        ]),
        ("Stipends", [
            "On-call engineers receive a weekly stipend paid with the following "
            "month's payroll: $450 per week as primary and $200 per week as "
            "secondary. Rotterdam-based engineers receive EUR 420 and EUR 185 "
            "respectively. Each public holiday spent on call adds $150 (EUR 140). "
            "Team leads record rotations in Rippling by the 5th of each month.",
        ]),
        ("Time off in lieu", [
            "Work done because of a page between 20:00 and 08:00 local time, or at "
            "the weekend, earns time off in lieu (TOIL): one hour for every started "
            "hour of work. Log TOIL in Rippling within two weeks. After a night with "
            "more than two hours of paging, take the following morning off without "
            "asking.",
        ]),
        ("Expectations while on call", [
            ["Keep your laptop and a working internet connection within 15 minutes of you.",
             "Acknowledge pages within the times set in the incident response runbook.",
             "Hand over open issues in writing at the end of your week."],
        ]),
        ("Alert hygiene", [
            "If a rotation receives more than 10 pages in a week, the team lead "
            "reviews every alert that fired and either fixes its cause, tunes it or "
            "downgrades it to a ticket. Noisy alerts are a bug, not a fact of life.",
        ]),
    ]),
    "runbooks/disaster-recovery.pdf": ("Disaster Recovery Runbook", [
        ("Recovery objectives", [
            ["larkdb (PostgreSQL): recovery point objective (RPO) 15 minutes, "
             "recovery time objective (RTO) 4 hours.",
             "ch-analytics (ClickHouse): RPO 24 hours, RTO 48 hours.",
             "S3 documents: versioned and replicated to a second region, so no "
             "documents should be lost."],
        ]),
        ("Backups", [
            "RDS automated backups with point-in-time recovery are kept for 14 days. "
            "In addition, a logical pg_dump runs nightly at 02:00 UTC and is written "
            "to the bucket s3://larkspur-dr-backups in us-east-2, where it is kept "
            "for 35 days. ClickHouse is backed up nightly with clickhouse-backup to "
            "the same bucket.",
        ]),
        ("Point-in-time restore of larkdb", [
            ("steps", [
                "Declare an incident and agree the restore time with the Incident "
                "Commander.",
                "Start the restore: aws rds restore-db-instance-to-point-in-time "
                "--source-db-instance-identifier larkdb-prod "
                "--target-db-instance-identifier larkdb-restore-YYYYMMDD "
                "--restore-time 2025-01-14T09:30:00Z",
                "Wait for it: aws rds wait db-instance-available "
                "--db-instance-identifier larkdb-restore-YYYYMMDD",
                "Check row counts of the critical tables: larkctl dr verify "
                "--instance larkdb-restore-YYYYMMDD",
                "Point the writer DNS record in Route 53 (TTL 60 seconds) at the new "
                "instance, then restart dispatch-api and billing-svc.",
            ]),
        ]),
        ("Region failover", [
            "us-west-2 has a warm standby in us-east-2 with a cross-region read "
            "replica of larkdb and a scaled-down copy of every service. Failing over "
            "is decided jointly by the Incident Commander and the Director of "
            "Infrastructure. Run larkctl dr failover --from us-west-2 --to us-east-2, "
            "which promotes the replica and scales the standby to full size. The EU "
            "region has no warm standby and is recovered from backups.",
        ]),
        ("DR drills", [
            "SRE runs a disaster recovery drill twice a year, in April and October. "
            "The drill restores all of larkdb into an isolated AWS account and "
            "measures the real recovery time against the RTO. Results and follow-up "
            "tickets are recorded in Notion under Engineering > DR Drills.",
        ]),
    ]),
}

DOCX_DOCS = {
    "onboarding/laptop-setup.docx": ("Laptop Setup Guide", [
        ("What you receive", [
            "IT ships your laptop to your home address five working days before "
            "your start date. The standard engineering setup is:",
            ["MacBook Pro 14-inch with M3 Pro, 36 GB memory and 1 TB storage",
             "USB-C charger and a USB-C to HDMI adapter",
             "A prepaid return box, kept for when the laptop is replaced"],
        ]),
        ("Enrolling in Kandji", [
            "Larkspur manages laptops with Kandji. Enrol before you do anything else:",
            ("steps", [
                "Switch the laptop on, join your Wi-Fi network and create a local "
                "account using your firstname.lastname username.",
                "In Safari, open https://larkspur.kandji.io/enroll and sign in with "
                "your Larkspur Google account.",
                "Download the enrolment profile and approve it in System Settings > "
                "Privacy & Security > Profiles.",
                "Leave the laptop on and connected. Within about 30 minutes Kandji "
                "installs CrowdStrike Falcon, Tailscale, 1Password and Google Chrome. "
                "Do not restart while this is happening.",
            ]),
        ]),
        ("Security baseline", [
            ["FileVault disk encryption is switched on by Kandji and the recovery "
             "key is escrowed automatically.",
             "The screen locks after 5 minutes of inactivity.",
             "macOS updates must be installed within 14 days of release; after that "
             "Kandji forces a restart.",
             "You do not have admin rights by default. Use Request Admin in Kandji "
             "Self Service for 30 minutes of temporary admin access."],
        ]),
        ("Other apps", [
            "Slack, Zoom and other approved apps are available from Kandji Self "
            "Service. Developer tools are covered in the local development "
            "environment guide.",
        ]),
        ("Lost or stolen laptop", [
            "Report a lost or stolen laptop within one hour: post in #it-help and "
            "call the IT emergency line on +1 503 555 0142. IT will lock and wipe the "
            "device remotely through Kandji.",
        ]),
        ("Replacement and return", [
            "Laptops are replaced every three years. When you leave Larkspur, return "
            "your laptop in the prepaid box within 10 days of your last working day.",
        ]),
    ]),
    "policies/code-review.docx": ("Code Review and Branching Policy", [
        ("Branching", [
            "We use trunk-based development. The main branch is protected and is "
            "always deployable. Work happens on short-lived branches named after "
            "the Jira ticket, for example ROUTE-412-eta-rounding. A bot comments on "
            "branches that are more than 14 days old, and branches are deleted "
            "automatically after merge.",
        ]),
        ("Pull request requirements", [
            ["The description links the Jira ticket and explains how the change was tested.",
             "CI is green, including make lint test.",
             "Test coverage does not drop by more than 1 percentage point.",
             "Aim for fewer than 400 changed lines; split larger changes."],
        ]),
        ("Approvals", [
            ("table", [
                ["Change", "Approvals needed"],
                ["Most repositories", "One approval"],
                ["dispatch-api, billing-svc and infra",
                 "Two approvals, at least one from CODEOWNERS"],
                ["Anything under migrations/", "One of the approvals must come from SRE"],
            ]),
            "Authors can never approve their own pull request. A pull request with "
            "the hotfix label may merge with a single approval, but it needs a full "
            "follow-up review within one business day.",
        ]),
        ("Review expectations", [
            "Reviewers give a first response within one business day. Prefix review "
            "comments so the author knows what matters:",
            ["blocking: must be fixed before merging",
             "nit: optional style suggestion",
             "question: asking for understanding, not a change"],
        ]),
        ("Merging", [
            "Only squash merges are allowed. The pull request title becomes the "
            "commit message and must follow Conventional Commits (feat:, fix:, "
            "chore:, docs:). The author merges, not the reviewer, once all checks "
            "and approvals are in place.",
        ]),
    ]),
    "architecture/observability.docx": ("Observability Guide", [
        ("Metrics", [
            "Prometheus scrapes the /metrics endpoint of every pod every 30 seconds. "
            "Dashboards live in Grafana at https://grafana.internal.larkspur.io. "
            "Name metrics larkspur_<service>_<name>_<unit>, for example "
            "larkspur_tracker_pings_ingested_total. Prometheus keeps 15 days of data "
            "locally; Mimir keeps 13 months for long-term queries.",
        ]),
        ("Logs", [
            "Services write JSON logs to stdout with at least the fields ts, level, "
            "msg, service, tenant_id and trace_id. Grafana Alloy ships them to Loki, "
            "where they are kept for 30 days. Query them in Grafana Explore, for "
            "example {service=\"dispatch-api\"} |= \"timeout\". Never log Restricted "
            "data such as driver locations or customer PII.",
        ]),
        ("Tracing", [
            "Services are instrumented with the OpenTelemetry SDK and send traces to "
            "Tempo. Production samples 10% of traces and staging samples all of "
            "them. The trace_id field in logs links each log line to its trace.",
        ]),
        ("Alerting", [
            "Alert rules live in the observability/alerts/ folder of the infra "
            "repository. The severity label decides where an alert goes:",
            ["severity=page goes to PagerDuty and wakes the on-call engineer.",
             "severity=ticket goes to the Slack channel #alerts-low.",
             "Every paging alert must have a runbook_url annotation."],
        ]),
        ("Service level objectives", [
            ("table", [
                ["Service", "SLO"],
                ["dispatch-api", "99.9% monthly availability; p99 latency below 400 ms"],
                ["tracker", "99% of pings visible to dispatchers within 60 seconds"],
                ["billing-svc", "Nightly invoice run finished by 06:00 UTC"],
            ]),
        ]),
    ]),
}
# fmt: on


def write_pdf(path, title, sections):
    pdf = FPDF(format="A4")
    pdf.creation_date = datetime(2025, 1, 6, tzinfo=UTC)  # reproducible output
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, title, align="L")
    for heading, blocks in sections:
        pdf.ln(6)
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, heading, align="L")
        pdf.ln(2)
        pdf.set_font("Helvetica", "", 11)
        for block in blocks:
            if isinstance(block, str):
                pdf.multi_cell(0, 5, block, align="L")
            else:
                numbered = isinstance(block, tuple)
                items = block[1] if numbered else block
                for i, item in enumerate(items, 1):
                    pdf.set_x(25)
                    pdf.multi_cell(0, 5, f"{i}. {item}" if numbered else f"- {item}", align="L")
                    pdf.ln(2)  # keeps pdfminer from merging the items into one box
            pdf.ln(2)
    pdf.output(str(path))


def write_docx(path, title, sections):
    doc = Document()
    doc.add_heading(title, level=1)
    for heading, blocks in sections:
        doc.add_heading(heading, level=2)
        for block in blocks:
            if isinstance(block, str):
                doc.add_paragraph(block)
            elif isinstance(block, list):
                for item in block:
                    doc.add_paragraph(item, style="List Bullet")
            elif block[0] == "steps":
                for item in block[1]:
                    doc.add_paragraph(item, style="List Number")
            else:  # ("table", rows)
                rows = block[1]
                table = doc.add_table(rows=len(rows), cols=len(rows[0]))
                table.style = "Table Grid"
                for r, row in enumerate(rows):
                    for c, text in enumerate(row):
                        table.cell(r, c).text = text
    doc.save(str(path))


def main():
    for rel, (title, sections) in PDF_DOCS.items():
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        write_pdf(OUT / rel, title, sections)
        print("wrote", rel)
    for rel, (title, sections) in DOCX_DOCS.items():
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        write_docx(OUT / rel, title, sections)
        print("wrote", rel)
    # A deliberately unparseable file, for testing error handling.
    broken = b"This is not a PDF. It was truncated during upload.\n\x00\x17\x93"
    (OUT / "broken.pdf").write_bytes(broken)
    print("wrote broken.pdf")


if __name__ == "__main__":
    main()
