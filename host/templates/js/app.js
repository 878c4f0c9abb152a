// The {{name}} mapper: {{name}} webhooks to Sluice ticket actions.
//
// Made by `host new-mapper`. Replace the starter events below with your
// provider's, one fixture per rule in fixtures/, and run ./build.sh and
// `host test-mapper {{name}}.wasm fixtures` until every case passes.
//
// WIT in JavaScript (jco): exports are camelCase functions; records are
// objects with camelCase fields; variants are `{tag: 'case-name', val}`;
// enums are their kebab-case names as strings; `option<T>` is the value or
// `undefined`; `list<u8>` is a Uint8Array. Returning is `ok`; throwing a
// `{kind, message}` object is `err(map-error)`. Any other throw (a bug) is
// reported as `internal` with its message and line in this file.

import { log } from 'sluice:mapper/host';

const PRIORITY = { critical: 'critical', high: 'high', medium: 'medium', low: 'low' };

/** A `map-error` to throw: kind is malformed-payload, unsupported-event, bad-config or internal. */
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

/** The email user_directory gives a {{name}} user, or a bad-config error. */
function email(directory, user) {
  const found = directory[user];
  if (!found) {
    throw mapError('bad-config', `user \`${user}\` is not in user_directory`);
  }
  return found;
}

export function mapToTicketEvent(delivery, config) {
  let body;
  try {
    body = JSON.parse(new TextDecoder().decode(delivery.body));
  } catch (e) {
    throw mapError('malformed-payload', `body is not JSON: ${e.message}`);
  }
  const directory = JSON.parse(config || '{}').user_directory || {};
  const event = field(body, 'event');
  if (event === 'ping') {
    return { eventType: 'ping', actions: [] };
  }
  const eventType = event.replace(/\./g, '_');
  const one = (tag, val) => ({ eventType, actions: [{ tag, val }] });
  const by = () => email(directory, field(body, 'actor'));
  const ticket = () => ({ externalId: `{{name}}:${field(body, 'issue.id')}` });
  log('debug', `${event} from ${body.actor}`);
  switch (event) {
    case 'issue.opened':
      return one('create', {
        subject: field(body, 'issue.title'),
        description: body.issue.body || '',
        priority: PRIORITY[body.issue.priority] || 'medium',
        ticketType: 'TASK',
        requestedBy: by(),
        externalId: `{{name}}:${field(body, 'issue.id')}`,
        labels: ['{{name}}'],
      });
    case 'issue.moved':
      return one('status-change', { ticket: ticket(), status: field(body, 'issue.status'), changedBy: by() });
    case 'issue.commented':
      return one('comment', {
        ticket: ticket(),
        comment: field(body, 'comment.text'),
        commentedBy: by(),
        externalCommentId: body.comment.id,
      });
    case 'issue.assigned':
      return one('assign', { ticket: ticket(), assignedTo: email(directory, field(body, 'assignee')), assignedBy: by() });
    case 'review.submitted':
      return one('signoff', {
        ticket: ticket(),
        activity: 'Development',
        role: 'accountable',
        email: by(),
        signoffStatus: field(body, 'review.state') === 'approved' ? 'approved' : 'rejected',
      });
    case 'pull_request.opened':
      // The branch names the ticket under the host's branch convention.
      return one('link-pr', {
        ticket: { branch: field(body, 'pull_request.branch') },
        prId: field(body, 'pull_request.id'),
        repo: field(body, 'pull_request.repo'),
        url: body.pull_request.url,
      });
    case 'issue.closed':
      return one('resolve', { ticket: ticket(), resolvedBy: by() });
    case 'issue.escalated':
      return one('escalate', { ticket: ticket(), escalatedBy: by(), reason: body.reason });
    default:
      throw mapError('unsupported-event', `{{name}} event \`${event}\` is not mapped`);
  }
}

// Outbound sync (ticket changes to {{name}}) is not written yet: no requests.
export function mapFromTicketEvent(_change, _config) {
  return [];
}
