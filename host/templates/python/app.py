"""The {{name}} mapper: {{name}} webhooks to Sluice ticket actions.

Made by `host new-mapper`. Replace the starter events below with your
provider's, one fixture per rule in fixtures/, and run ./build.sh and
`host test-mapper {{name}}.wasm fixtures` until every case passes.

WIT in Python (componentize-py): the world's exports are methods of
`wit_world.WitWorld`; records are dataclasses in `wit_world.imports.types`
with snake_case fields; a variant case is a class `Action_Create(value)`;
enums are `Priority.HIGH`; `option<T>` is the value or None; `list<u8>` is
bytes. Returning is `ok`; raising `Err(MapError(kind, message))` is
`err(map-error)`. Any other exception traps, and its traceback's last lines
reach the host's report.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

PRIORITY = {
    "critical": types.Priority.CRITICAL,
    "high": types.Priority.HIGH,
    "medium": types.Priority.MEDIUM,
    "low": types.Priority.LOW,
}


def fail(kind, message):
    return Err(types.MapError(kind, message))


def field(obj, path):
    """The value at a dotted path, or a malformed-payload error naming it."""
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            raise fail(types.MapErrorKind.MALFORMED_PAYLOAD, f"missing field `{path}`")
        value = value[part]
    return value


def email(directory, user):
    """The email user_directory gives a {{name}} user, or a bad-config error."""
    if user not in directory:
        raise fail(types.MapErrorKind.BAD_CONFIG, f"user `{user}` is not in user_directory")
    return directory[user]


def ref(external_id=None, branch=None):
    return types.TicketRef(guid=None, external_id=external_id, branch=branch, from_action=None)


class WitWorld(wit_world.WitWorld):
    def map_to_ticket_event(self, delivery, config):
        try:
            body = json.loads(bytes(delivery.body))
        except ValueError as e:
            raise fail(types.MapErrorKind.MALFORMED_PAYLOAD, f"body is not JSON: {e}")
        directory = json.loads(config or "{}").get("user_directory", {})
        event = field(body, "event")
        if event == "ping":
            return types.Mapped("ping", [])
        host.log(host.LogLevel.DEBUG, f"{event} from {body.get('actor')}")

        def by():
            return email(directory, field(body, "actor"))

        def ticket():
            return ref(external_id=f"{{name}}:{field(body, 'issue.id')}")

        if event == "issue.opened":
            action = types.Action_Create(types.CreateTicket(
                subject=field(body, "issue.title"),
                description=body["issue"].get("body", ""),
                priority=PRIORITY.get(body["issue"].get("priority"), types.Priority.MEDIUM),
                ticket_type="TASK",
                requested_by=by(),
                external_id=f"{{name}}:{field(body, 'issue.id')}",
                labels=["{{name}}"],
            ))
        elif event == "issue.moved":
            action = types.Action_StatusChange(types.StatusChange(
                ticket=ticket(), status=field(body, "issue.status"), changed_by=by()))
        elif event == "issue.commented":
            action = types.Action_Comment(types.AddComment(
                ticket=ticket(),
                comment=field(body, "comment.text"),
                commented_by=by(),
                external_comment_id=body["comment"].get("id"),
            ))
        elif event == "issue.assigned":
            action = types.Action_Assign(types.Assign(
                ticket=ticket(), assigned_to=email(directory, field(body, "assignee")), assigned_by=by()))
        elif event == "review.submitted":
            approved = field(body, "review.state") == "approved"
            action = types.Action_Signoff(types.Signoff(
                ticket=ticket(),
                activity="Development",
                role=types.RaciRole.ACCOUNTABLE,
                email=by(),
                signoff_status=types.SignoffStatus.APPROVED if approved else types.SignoffStatus.REJECTED,
            ))
        elif event == "pull_request.opened":
            # The branch names the ticket under the host's branch convention.
            action = types.Action_LinkPr(types.LinkPr(
                ticket=ref(branch=field(body, "pull_request.branch")),
                pr_id=field(body, "pull_request.id"),
                repo=field(body, "pull_request.repo"),
                url=body["pull_request"].get("url"),
            ))
        elif event == "issue.closed":
            action = types.Action_Resolve(types.Resolve(ticket=ticket(), resolved_by=by()))
        elif event == "issue.escalated":
            action = types.Action_Escalate(types.Escalate(
                ticket=ticket(), escalated_by=by(), reason=body.get("reason")))
        else:
            raise fail(types.MapErrorKind.UNSUPPORTED_EVENT, f"{{name}} event `{event}` is not mapped")
        return types.Mapped(event.replace(".", "_"), [action])

    def map_from_ticket_event(self, change, config):
        # Outbound sync (ticket changes to {{name}}) is not written yet: no requests.
        return []
