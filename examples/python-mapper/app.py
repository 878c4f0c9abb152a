"""An uptime-monitor mapper in Python, built with componentize-py.

A generic alerting webhook (`{"event": "alert.opened", "alert": {...}}`)
becomes ticket actions: an opened alert creates an INCIDENT ticket linked to
the alert id, a note comments on it, an acknowledgement assigns it, a
resolved alert resolves it. It shows a mapper in a language other than
Rust: the same WIT world, the same fixtures, the same `host test-mapper`.

Build: componentize-py -d ../../wit -w mapper componentize app -o uptime_mapper.wasm
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


def alert_ref(alert_id):
    return types.TicketRef(guid=None, external_id=f"alert:{alert_id}", branch=None, from_action=None)


def field(obj, path):
    """The value at a dotted path, or a malformed-payload error naming it."""
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            raise fail(types.MapErrorKind.MALFORMED_PAYLOAD, f"missing field `{path}`")
        value = value[part]
    return value


class WitWorld(wit_world.WitWorld):
    def map_to_ticket_event(self, delivery, config):
        try:
            body = json.loads(bytes(delivery.body))
        except ValueError as e:
            raise fail(types.MapErrorKind.MALFORMED_PAYLOAD, f"body is not JSON: {e}")
        event = field(body, "event")
        if event == "heartbeat":
            return types.Mapped("heartbeat", [])
        if event == "crash":
            # Deliberately uncaught: the host reports the traceback's last lines.
            raise RuntimeError("the monitor sent a crash event")
        alert_id = field(body, "alert.id")
        ticket = alert_ref(alert_id)
        host.log(host.LogLevel.INFO, f"{event} for alert {alert_id}")
        if event == "alert.opened":
            severity = body["alert"].get("severity", "medium")
            create = types.CreateTicket(
                subject=field(body, "alert.title"),
                description=body["alert"].get("details", ""),
                priority=PRIORITY.get(severity, types.Priority.MEDIUM),
                ticket_type="INCIDENT",
                requested_by=None,
                external_id=f"alert:{alert_id}",
                labels=["uptime"],
            )
            return types.Mapped("alert_opened", [types.Action_Create(create)])
        if event == "alert.note":
            note = types.AddComment(
                ticket=ticket,
                comment=field(body, "note.text"),
                commented_by=field(body, "note.author"),
                external_comment_id=None,
            )
            return types.Mapped("alert_note", [types.Action_Comment(note)])
        if event == "alert.acknowledged":
            who = field(body, "by")
            assign = types.Assign(ticket=ticket, assigned_to=who, assigned_by=who)
            return types.Mapped("alert_acknowledged", [types.Action_Assign(assign)])
        if event == "alert.resolved":
            resolve = types.Resolve(ticket=ticket, resolved_by=field(body, "by"))
            return types.Mapped("alert_resolved", [types.Action_Resolve(resolve)])
        raise fail(types.MapErrorKind.UNSUPPORTED_EVENT, f"uptime event `{event}` is not mapped")

    def map_from_ticket_event(self, change, config):
        return []
