// A PagerDuty (webhooks v3) mapper in JavaScript, built with jco.
//
// An incident triggered creates an INCIDENT ticket linked to the incident,
// an acknowledgement assigns it, a note comments on it, an escalation
// escalates it, a resolution resolves it. It shows a mapper in JavaScript:
// the same WIT world, the same fixtures, the same `host test-mapper` as the
// Rust and Python ones. Build: ./build.sh (docs/mapper-guide.md, "JavaScript").
//
// WIT in JavaScript (jco): exports are camelCase functions; records are
// objects with camelCase fields; variants are `{tag: 'case-name', val}`;
// enums are their kebab-case names as strings; `option<T>` is the value or
// `undefined`; `list<u8>` is a Uint8Array. Returning a value is `ok`;
// throwing a `{kind, message}` object is `err(map-error)`. Any other throw
// (a TypeError, a bug) is reported as `internal` with its message and line,
// by the guard ./build.sh appends.

import { log } from 'sluice:mapper/host';

const PRIORITY = { P1: 'critical', P2: 'high', P3: 'medium', P4: 'low', P5: 'low' };

/** A `map-error` to throw: `kind` is malformed-payload, unsupported-event, bad-config or internal. */
function mapError(kind, message) {
  return { kind, message };
}

/** The value at a dotted path, or a malformed-payload error naming it. */
function field(obj, path) {
  let value = obj;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || value[part] == null) {
      throw mapError('malformed-payload', `missing field \`${path}\``);
    }
    value = value[part];
  }
  return value;
}

/** The email the config's user_directory gives a PagerDuty user, or a bad-config error. */
function email(config, user) {
  const directory = config.user_directory || {};
  const id = field(user, 'id');
  const found = directory[id];
  if (!found) {
    throw mapError('bad-config', `user \`${id}\` (${user.summary || 'no name'}) is not in user_directory`);
  }
  return found;
}

function incidentRef(id) {
  return { externalId: `pagerduty:${id}` };
}

export function mapToTicketEvent(delivery, config) {
  let body;
  try {
    body = JSON.parse(new TextDecoder().decode(delivery.body));
  } catch (e) {
    throw mapError('malformed-payload', `body is not JSON: ${e.message}`);
  }
  const settings = JSON.parse(config || '{}');
  const event = field(body, 'event');
  const type = field(event, 'event_type');
  const data = field(event, 'data');
  if (type === 'pagey.ping') {
    return { eventType: 'ping', actions: [] };
  }
  log('info', `${type} ${event.id || ''}`);
  switch (type) {
    case 'incident.triggered': {
      const priority = data.priority ? PRIORITY[data.priority.summary] : undefined;
      return {
        eventType: 'incident_triggered',
        actions: [
          {
            tag: 'create',
            val: {
              subject: field(data, 'title'),
              description: `${field(data, 'service.summary')}: ${data.html_url || ''}`.trim(),
              priority: priority || (data.urgency === 'high' ? 'high' : 'medium'),
              ticketType: 'INCIDENT',
              requestedBy: undefined,
              externalId: `pagerduty:${field(data, 'id')}`,
              labels: ['pagerduty'],
            },
          },
        ],
      };
    }
    case 'incident.acknowledged': {
      const by = email(settings, field(event, 'agent'));
      return {
        eventType: 'incident_acknowledged',
        actions: [{ tag: 'assign', val: { ticket: incidentRef(field(data, 'id')), assignedTo: by, assignedBy: by } }],
      };
    }
    case 'incident.annotated':
      return {
        eventType: 'incident_annotated',
        actions: [
          {
            tag: 'comment',
            val: {
              ticket: incidentRef(field(data, 'incident.id')),
              comment: field(data, 'content'),
              commentedBy: email(settings, field(event, 'agent')),
              externalCommentId: data.id,
            },
          },
        ],
      };
    case 'incident.escalated':
      return {
        eventType: 'incident_escalated',
        actions: [
          {
            tag: 'escalate',
            val: {
              ticket: incidentRef(field(data, 'id')),
              escalatedBy: 'pagerduty',
              reason: data.escalation_policy ? `escalation policy ${data.escalation_policy.summary}` : undefined,
            },
          },
        ],
      };
    case 'incident.resolved':
      return {
        eventType: 'incident_resolved',
        actions: [
          {
            tag: 'resolve',
            val: { ticket: incidentRef(field(data, 'id')), resolvedBy: event.agent ? email(settings, event.agent) : 'pagerduty' },
          },
        ],
      };
    case 'incident.priority_updated':
      // Left unguarded on purpose: `data.priority` is null when someone
      // clears the priority, and the TypeError that follows shows how an
      // accidental bug reaches the report (fixtures/error_priority_cleared.json).
      return {
        eventType: 'incident_priority_updated',
        actions: [
          {
            tag: 'status-change',
            val: {
              ticket: incidentRef(field(data, 'id')),
              status: data.priority.summary === 'P1' ? 'IN_PROGRESS' : 'NEW',
              changedBy: 'pagerduty',
            },
          },
        ],
      };
    default:
      throw mapError('unsupported-event', `event type \`${type}\``);
  }
}

// Outbound sync (tickets to PagerDuty) is not written yet: no requests.
export function mapFromTicketEvent(_change, _config) {
  return [];
}
