#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This module is implemented as an action plugin (plugins/action/incident_lifecycle.py) and runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_lifecycle
short_description: Declare, update and resolve an incident in its timeline, and render its communications
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Runs on the controller (an action plugin) and starts no module process, so a declaration costs no
    module call before the first mitigating step.
  - Reads the incident's earlier lifecycle records from its verified timeline (its state, that is severity, status,
    roles with their history, the severity policy recorded at declaration, the next update due), checks the
    request against it and returns the new lifecycle record in RV(lifecycle). The
    C(firebreak.runbooks.incident_timeline) callback records the task result, so the timeline's
    C(details.lifecycle) is the record.
  - Statuses only move forward (investigating, identified, monitoring, resolved); severities are P1 to P4;
    roles are commander, tech_lead, comms, approver and scribe. A bad value fails the task, naming it.
  - Renders the chat and status page texts from the incident procedures' templates (Slack Incident
    Announcement, Incident Update Template, Resolution Announcement, External Communication) and returns
    the webhook payloads; posting is left to the roles (M(ansible.builtin.uri)), whose outcome is recorded
    with O(event=delivery). Webhook URLs are never given to this module.
  - Changes nothing on any target (C(changed=false)); in check mode the record is marked so and ignored
    when the state is read back.
options:
  event:
    description:
      - V(declared) opens the incident (repeating it on an open incident records nothing);
        V(update) changes severity, status, roles or says what is new; V(resolved) closes it;
        V(delivery) records whether a post of an earlier record was delivered.
    type: str
    required: true
    choices: [declared, update, resolved, delivery]
  incident_id:
    description: The incident. Defaults to the environment variable C(FIREBREAK_INCIDENT_ID).
    type: str
  timeline:
    description:
      - The incident timeline to read the state from.
      - Defaults to the environment variable C(FIREBREAK_TIMELINE), else C(incidents/<incident_id>/timeline.jsonl).
    type: path
  title:
    description:
      - The incident's title (required with O(event=declared)).
      - One line of at most 200 characters without control characters (ANSI escapes, newlines, tabs); anything
        else is refused, naming it.
    type: str
  type:
    description: What kind of incident it is (for example V(service), V(security), V(data)).
    type: str
    default: service
  severity:
    description: The severity (required with O(event=declared); on update or resolve, a change).
    type: str
    choices: [P1, P2, P3, P4]
  status:
    description: The status; it only moves forward. Defaults to V(investigating) on declaration, else unchanged.
    type: str
    choices: [investigating, identified, monitoring, resolved]
  environment:
    description: The environment affected (for example V(production)).
    type: str
    default: ""
  services:
    description: The services affected.
    type: list
    elements: str
    default: []
  accounts:
    description: The AWS accounts (or clusters) affected.
    type: list
    elements: str
    default: []
  impact:
    description: The impact in incident words; on update or resolve, a new assessment.
    type: str
    default: ""
  first_event_at:
    description:
      - When the incident started (the alarm's state change, the first report), ISO 8601 with a time zone, for example
        V(2026-11-24T13:30:00Z); with O(event=declared) only. Recorded as C(first_event_at).
      - The report measures its clocks (time to declare, to mitigation, to containment, to recovery) from it; without
        it, from the timeline's first record. A time without a zone, or later than the declaration, is refused.
    type: str
  roles:
    description:
      - Role name to person, for C(commander), C(tech_lead), C(comms), C(approver) and C(scribe).
      - C(commander) is required on declaration; on update or resolve, the roles that change hands.
    type: dict
    default: {}
  update:
    description: The internal update text (O(event=update)) or the resolution summary (O(event=resolved)).
    type: str
    default: ""
  message:
    description: The external (status page) text; defaults to the template's words.
    type: str
    default: ""
  policy_preset:
    description:
      - The severity table the incident follows, recorded at declaration.
      - V(incident-procedures) responds in 15 min / 1 h / 4 h / next business day and updates every 15 min (P1)
        and 30 min (P2); V(serverless) responds in 5 / 15 / 60 min / next business day.
    type: str
    default: incident-procedures
    choices: [incident-procedures, serverless]
  policy:
    description:
      - "The organisation's overrides of the preset, per severity, for example C({P2: {update_every_minutes: 20}})."
      - Keys are C(label), C(response_minutes), C(update_every_minutes) and C(status_page).
    type: dict
    default: {}
  channel:
    description: With O(event=delivery), the channel posted to.
    type: str
    choices: [chat, status_page]
  for_event:
    description: With O(event=delivery), the record whose communication was posted.
    type: str
    choices: [declared, update, resolved]
  delivered:
    description: With O(event=delivery), whether the webhook accepted the post.
    type: bool
    default: false
  attempts:
    description: With O(event=delivery), how many attempts were made.
    type: int
  status_code:
    description: With O(event=delivery), the last HTTP status (V(-1) when there was no answer).
    type: int
  error:
    description: With O(event=delivery), why it was not delivered. Any URL in it is removed.
    type: str
  post_timeout:
    description: Seconds one webhook post may take (returned in RV(post) for the posting task).
    type: int
    default: 5
  post_retries:
    description: Retries of a failed post (returned in RV(post)), cut to fit O(retry_budget).
    type: int
    default: 2
  retry_budget:
    description: Seconds all attempts of one post may take together; RV(post) fits in it.
    type: int
    default: 60
extends_documentation_fragment:
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on
      the controller.
    support: full
notes:
  - The roles M(firebreak.runbooks.incident_declare), C(incident_update) and C(incident_resolve) wrap it and post.
seealso:
  - name: The incident frame
    description: Lifecycle, severity policy and communications.
    link: https://github.com/firebreak/runbooks/blob/main/docs/frame.md
"""

EXAMPLES = r"""
- name: Declare the incident
  firebreak.runbooks.incident_lifecycle:
    event: declared
    title: API unavailable after deploy 142
    severity: P2
    environment: production
    services: [api]
    roles:
      commander: "@jane"
      tech_lead: "@john"
  register: declared

- name: Raise it to P1 (updates every 15 minutes from now)
  firebreak.runbooks.incident_lifecycle:
    event: update
    severity: P1
    status: identified
    update: Database connection pool exhausted; restarting the backend.
"""

RETURN = r"""
lifecycle:
  description: The lifecycle record, as the timeline keeps it in C(details.lifecycle).
  returned: when something was recorded
  type: dict
  sample:
    event: update
    severity: P1
    previous_severity: P2
    status: identified
    next_update_due: "2025-12-27T15:15:00.000Z"
    update_every_minutes: 15
state:
  description: The incident's state after this record (severity, status, roles, histories, next update due).
  returned: unless O(event=delivery)
  type: dict
  sample: {severity: P1, status: identified, roles: {commander: "@jane"}}
post:
  description:
    - How to post (C(timeout), C(retries), C(delay), C(budget)) and to which channels (C(chat), C(status_page)).
  returned: unless O(event=delivery)
  type: dict
  sample: {timeout: 5, retries: 2, delay: 1, budget: 60, chat: true, status_page: true}
payloads:
  description:
    - The JSON bodies for the chat webhook (C(chat), Slack-compatible C({text})) and the status page
      (C(status_page)).
  returned: when something was recorded, unless O(event=delivery)
  type: dict
  sample: {chat: {text: "..."}, status_page: {event: declared, status: investigating, message: "..."}}
msg:
  description: What was recorded, in one line.
  returned: always
  type: str
  sample: "update: P1 identified (severity P2 → P1); next update due 2025-12-27T15:15:00.000Z"
"""
