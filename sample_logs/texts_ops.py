"""Hand-written texts for the sample log's meeting-notes summarizer and weekly report.

Prose is hard-wrapped in the source; ``generate.unwrap`` joins the lines of each paragraph.
``[[slot]]`` marks a slot that the generator fills.
"""

# The summarizer puts the request time first, which breaks the prompt-cache prefix.
MEETING_TIME_LINE = "Current date and time: [[now]]."

MEETING_INSTRUCTIONS = """\
You are Minutes, the meeting-notes assistant used by the teams at Acme Cloud. People paste the
raw notes they typed during a meeting, often in a hurry, with abbreviations, half sentences,
typos and the names of people and systems written in different ways. Your job is to turn them
into a short, accurate summary that someone who missed the meeting can read in one minute and
act on.

## What to produce
Always answer with these sections, in this order, using Markdown headings of level two:

1. **Summary**: two to four sentences that say what the meeting was for and what came out of it.
Lead with the outcome, not with the agenda.
2. **Decisions**: a bulleted list of decisions that were actually made. A decision is something
the group agreed on, not something that was only discussed or proposed. If no decision was made,
write "No decisions recorded."
3. **Action items**: a checklist (`- [ ]`) with one line per task, in the form
"**Owner**: task (due date)". Use the owner's first name as written in the notes. If no due date
was given, write "no date". If an item has no owner, put "**Unassigned**" and mention it again
under open questions.
4. **Open questions**: a bulleted list of questions that were raised but not answered, and risks
that someone should follow up on. Leave this section out if there are none.

## Accuracy rules
- Use only what is in the notes. Never add tasks, names, numbers or dates that are not there.
- Keep numbers exactly as written (amounts, percentages, version numbers, ticket ids, dates).
- When the notes use a relative date such as "friday" or "next week", convert it to a calendar
date using the current date and time given at the top of this prompt, and keep the weekday, for
example "Fri, Oct 9".
- If two notes contradict each other, report both and add the conflict to the open questions.
- If a name is ambiguous (two people with the same first name), keep the text as written.
- Do not guess who owns an action item from the topic; only use owners that the notes state.
- Do not include small talk, jokes or off-topic remarks, even if they are in the notes.

## Style rules
- Write in plain US English, in the third person and in the past tense for the summary.
- Spell out abbreviations the first time if the meaning is clear from the notes (for example
"SLO (service level objective)"), otherwise keep them as written.
- Be brief. The whole answer should usually fit in 250 words; never go over 400 words.
- No greetings, no sign-off, no commentary about the notes themselves, no apologies.
- Do not use emojis or exclamation marks.
- Format code, commands, feature flags and ticket ids in backticks, for example `OPS-1423`.

## Internal names you will see
- Teams: Platform, Billing, Growth, Mobile, Data, Support Ops, Security, Design.
- Systems: Atlas (the main web app), Ledger (billing service), Relay (notification service),
Vault (secrets), Beacon (status page), Harbor (CI/CD pipeline), Quill (docs site).
- Rituals: "sync" is the weekly team meeting, "retro" is a retrospective, "PIR" is a
post-incident review, "triage" is the daily bug triage, "GA" means general availability.
- Severity levels: SEV1 (full outage), SEV2 (major feature down), SEV3 (degraded or minor).
- Release trains leave every second Wednesday; a "hotfix" is any release outside the train.
- OKRs are quarterly objectives; "Q4" means October to December.

## Sensitive content
- If the notes contain passwords, API keys, access tokens or card numbers, do not repeat them.
Replace them with "[redacted]" and add an open question asking the owner to rotate the secret.
- Salaries, performance reviews and health information must not appear in the summary even if
they are in the notes; write "personnel topic discussed (details omitted)" instead.
- Customer names may appear, but do not include personal email addresses or phone numbers.

## Incident reviews
When the notes are from a PIR, the summary must also state the incident id, the severity, the
duration of customer impact and the root cause as stated in the notes. Do not assign blame to
individuals; describe what happened to systems and processes. Follow-up tasks from a PIR go into
the action items like any other task.

## Customer calls
When the notes are from a call with a customer, name the customer company in the first sentence
of the summary and list any commitments made to the customer as action items, so that nothing
promised is forgotten. Feature requests from the customer go into the open questions unless a
decision about them was made in the call.

## Output example
## Summary
The Billing team reviewed the invoice rounding bug and agreed to ship the fix in the next release
train after a data check.

## Decisions
- Ship the rounding fix on the Oct 14 train instead of as a hotfix.

## Action items
- [ ] **Priya**: run the backfill query on staging and share the diff (Fri, Oct 9)
- [ ] **Unassigned**: update the help article about invoice totals (no date)

## Open questions
- Who owns the help article update?
"""

MEETING_KINDS = [
    "weekly sync", "sprint planning", "PIR", "design review", "customer call", "retro",
    "roadmap review",
]
MEETING_PEOPLE = [
    "Priya", "Daniel", "Mei", "Omar", "Sofia", "Lukas", "Grace", "Tariq", "Hannah", "Jonas",
    "Camila", "Wei", "Nadia", "Ethan",
]
MEETING_CUSTOMERS = ["Northwind", "Brightpath", "Lumen HQ", "Tidewater", "Quarry", "Oakridge"]
MEETING_TEAMS = ["Platform", "Billing", "Growth", "Mobile", "Data", "Support Ops", "Security"]
MEETING_SYSTEMS = ["Atlas", "Ledger", "Relay", "Vault", "Beacon", "Harbor", "Quill"]

# (raw note, clean summary line) pairs. Slots: [[p]], [[p2]] attendees, [[sys]], [[team]],
# [[cust]], [[n]], [[ms]], [[pct]], [[ticket]], and [[day]] (raw: "friday"; clean: "Fri, Oct 9").
MEETING_DISCUSSION = [
    ("[[sys]] p95 latency up to [[ms]]ms since tues deploy, [[p]] thinks its the new cache layer",
     "[[sys]] p95 latency rose to [[ms]] ms after Tuesday's deploy; the new cache layer is "
     "suspected"),
    ("error rate on [[sys]] ~[[pct]]% during peak, mostly timeouts to db",
     "[[sys]] error rate reached about [[pct]]% at peak, mostly database timeouts"),
    ("[[cust]] wants SSO w/ entra id before renewal, renewal is [[day]]",
     "[[cust]] asked for SSO with Entra ID before their renewal on [[day]]"),
    ("[[team]] team is short 1 eng this sprint (parental leave) - scope down",
     "[[team]] is one engineer short this sprint, so scope needs to shrink"),
    ("flaky tests in harbor again, [[n]] reruns last week, costs ~2h/day",
     "Flaky tests in Harbor caused [[n]] reruns last week, costing about two hours a day"),
    ("onboarding funnel: step 3 drop off [[pct]]%, design has 2 options",
     "Onboarding step 3 has a [[pct]]% drop-off; Design has two options to fix it"),
    ("[[sys]] migration to postgres 16 - staging done, prod window not picked",
     "The [[sys]] move to Postgres 16 is done on staging; no production window is set yet"),
    ("support volume +[[pct]]% after pricing email, mostly billing qs",
     "Support volume rose [[pct]]% after the pricing email, mostly billing questions"),
    ("[[p]] demoed new board filters, ppl liked saved views, not the colors",
     "[[p]] demoed the new board filters; saved views were well received, the colors were not"),
    ("on-call pages: [[n]] last week, half were noise from disk alerts",
     "On-call got [[n]] pages last week, half of them noisy disk alerts"),
    ("root cause: expired cert on [[sys]] internal endpoint, no alert on expiry",
     "Root cause was an expired certificate on an internal [[sys]] endpoint with no expiry alert"),
    ("customer impact ~[[n]] min, status page updated late (20 min)",
     "Customer impact lasted about [[n]] minutes and the status page was updated 20 minutes late"),
    ("q4 okr draft: cut infra cost [[pct]]%, ship eu region for business plan",
     "The Q4 OKR draft targets a [[pct]]% infra cost cut and the EU region for Business"),
]
MEETING_DECISIONS = [
    ("agreed: roll back cache layer on [[sys]] until fixed",
     "Roll back the [[sys]] cache layer until the fix is ready."),
    ("decided to ship on the next train not hotfix",
     "Ship on the next release train, not as a hotfix."),
    ("go with option B for onboarding", "Go with option B for the onboarding redesign."),
    ("ok to drop the csv import from this sprint", "Drop the CSV import from this sprint."),
    ("[[cust]] gets SSO beta access", "Give [[cust]] access to the SSO beta."),
    ("mute disk alerts below 90% for now", "Mute disk alerts below 90% for now."),
    ("prod migration window = sunday 06:00 utc",
     "Run the production migration Sunday at 06:00 UTC."),
    ("add cert expiry alerting to all internal endpoints",
     "Add certificate-expiry alerts to every internal endpoint."),
]
MEETING_ACTIONS = [
    ("AI [[p]]: write up rollback plan by [[day]]",
     "**[[p]]**: write up the rollback plan ([[day]])"),
    ("[[p]] to check db connection pool settings",
     "**[[p]]**: check the database connection pool settings (no date)"),
    ("AI [[p]] - send [[cust]] the SSO timeline [[day]]",
     "**[[p]]**: send [[cust]] the SSO timeline ([[day]])"),
    ("[[p]] quarantines the flaky tests, list in [[ticket]]",
     "**[[p]]**: quarantine the flaky tests listed in `[[ticket]]` (no date)"),
    ("AI: update help article on invoices (who?)",
     "**Unassigned**: update the invoice help article (no date)"),
    ("[[p]] to draft the q4 okr doc by [[day]]", "**[[p]]**: draft the Q4 OKR document ([[day]])"),
    ("[[p]] + [[p2]] pair on the migration runbook",
     "**[[p]]**: write the migration runbook with [[p2]] (no date)"),
    ("AI [[p]]: add expiry alert for [[sys]] certs, [[ticket]]",
     "**[[p]]**: add certificate-expiry alerts for [[sys]] (`[[ticket]]`) (no date)"),
    ("[[p]] will share the funnel dashboard in #growth",
     "**[[p]]**: share the funnel dashboard in #growth (no date)"),
    ("AI [[p]]: status page process fix, due [[day]]",
     "**[[p]]**: fix the status page update process ([[day]])"),
]
MEETING_QUESTIONS = [
    ("do we need legal review for the eu region??", "Does the EU region need a legal review?"),
    ("who owns harbor now that [[p]] moved teams?", "Who owns Harbor now that [[p]] moved teams?"),
    ("is [[pct]]% cost cut realistic w/o reserved instances",
     "Is a [[pct]]% cost cut realistic without reserved instances?"),
    ("[[cust]] renewal risk if sso slips?", "Is the [[cust]] renewal at risk if SSO slips?"),
    ("not clear if the cache bug also hits mobile", "Does the cache bug also affect Mobile?"),
]

WEEKLY_TEMPLATE = """\
Write the weekly operations report for Acme Cloud for the week of [[week_start]] to [[week_end]].
The report is read by the leadership team on Monday morning, so keep it factual, short and easy to
scan. Use the numbers below exactly as given; do not recompute them, round them differently or add
numbers that are not in the data.

Structure the report with these Markdown sections, in this order:

## Headline
One or two sentences with the most important thing that happened this week, good or bad.

## Reliability
Uptime against the 99.95% target, the number of incidents by severity with one line per SEV1 or
SEV2, and the p95 API latency compared with last week. Say clearly whether the SLO was met.

## Support
Tickets opened and closed, the backlog at the end of the week, the median first response time
against the 2-hour target, and CSAT. Call out any category that grew by more than 20%.

## Delivery
Deploys, rollbacks and the share of deploys that needed a rollback. Mention the change failure
rate if it is above 5%.

## Cost
Cloud spend for the week compared with the weekly budget and with last week, and the LLM API
spend as a separate line.

## Growth
New signups, trial conversions, paying workspaces at the end of the week and churned workspaces.

## Risks and asks
Up to three bullets with risks for next week or decisions needed from leadership. If nothing
needs attention, write "Nothing needs leadership attention this week."

Rules: write in US English, use the past tense, use bullets inside sections where it helps, do
not use tables, and keep the whole report under 450 words. Compare with the previous week only
where the data gives both numbers. Never speculate about causes that the data does not state.

Data for the week:
- uptime: [[uptime]]% (target 99.95%)
- incidents: [[sev1]] SEV1, [[sev2]] SEV2, [[sev3]] SEV3
- incident notes: [[incident_note]]
- p95 API latency: [[p95]] ms (last week [[p95_prev]] ms)
- tickets opened: [[opened]] (last week [[opened_prev]]), tickets closed: [[closed]]
- backlog at end of week: [[backlog]]
- median first response: [[frt]] minutes (target 120)
- CSAT: [[csat]]%
- fastest-growing ticket category: [[top_cat]] (+[[top_cat_pct]]% week over week)
- deploys: [[deploys]], rollbacks: [[rollbacks]]
- cloud spend: $[[cloud]] (weekly budget $[[budget]], last week $[[cloud_prev]])
- LLM API spend: $[[llm]]
- signups: [[signups]], trial conversions: [[conversions]]
- paying workspaces at end of week: [[paying]], churned workspaces: [[churned]]
"""

WEEKLY_INCIDENT_NOTES = [
    "SEV2 on Tuesday, file uploads failed for 38 minutes after a storage config change",
    "SEV2 on Thursday, Relay delayed notifications by up to 25 minutes",
    "no SEV1 or SEV2 incidents; SEV3s were slow search indexing",
    "SEV1 on Wednesday, Atlas unavailable for 17 minutes due to an expired certificate",
]
WEEKLY_CATEGORIES = ["billing", "bug", "account", "feature-request"]

WEEKLY_ANSWER = """\
## Headline
[[headline]]

## Reliability
- Uptime was [[uptime]]%, [[slo_phrase]] the 99.95% target.
- Incidents: [[sev1]] SEV1, [[sev2]] SEV2 and [[sev3]] SEV3; [[incident_note]].
- p95 API latency was [[p95]] ms, [[lat_dir]] from [[p95_prev]] ms the week before.

## Support
- [[opened]] tickets were opened ([[opened_prev]] the week before) and [[closed]] were closed,
leaving a backlog of [[backlog]].
- Median first response was [[frt]] minutes, [[frt_phrase]] the 2-hour target. CSAT was [[csat]]%.
- [[cat_line]]

## Delivery
- [[deploys]] deploys and [[rollbacks]] rollbacks ([[rb_rate]]% of deploys needed a
rollback).[[cfr_line]]

## Cost
- Cloud spend was $[[cloud]] against a weekly budget of $[[budget]], [[cloud_dir]] from
$[[cloud_prev]] the week before.
- LLM API spend was $[[llm]].

## Growth
- [[signups]] new signups and [[conversions]] trial conversions.
- [[paying]] paying workspaces at the end of the week; [[churned]] workspaces churned.

## Risks and asks
[[risks]]
"""
