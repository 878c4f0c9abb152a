declare module 'sluice:mapper/types@0.2.0' {
  /**
   * One HTTP header. Names are lower-case ASCII; a header sent several
   * times appears several times, in the order received.
   */
  export interface Header {
    name: string,
    value: string,
  }
  /**
   * A webhook delivery as the provider sent it, after the host verified
   * its signature.
   */
  export interface Delivery {
    /**
     * The provider's configured name, e.g. `bitbucket`.
     */
    provider: string,
    /**
     * The HTTP method, upper-case, e.g. `POST`. `TICK` is reserved: a
     * scheduled pull of a provider without webhooks (empty body, path
     * `/tick/{schedule name}`), made by the host, never by a sender.
     */
    method: string,
    /**
     * The request path and query string, e.g. `/hooks/slack?x=1`.
     */
    path: string,
    /**
     * Every request header, names lower-cased. Secrets the host used
     * for verification (signature and token headers) are included as
     * sent: they are the provider's proof, not the host's credentials.
     */
    headers: Array<Header>,
    /**
     * The raw body bytes, exactly as received. Not necessarily UTF-8
     * or JSON: judging it is the mapper's job.
     */
    body: Uint8Array,
    /**
     * When the host received the delivery, RFC 3339 in UTC.
     */
    receivedAt: string,
  }
  /**
   * Ticket priority.
   * # Variants
   * 
   * ## `"low"`
   * 
   * ## `"medium"`
   * 
   * ## `"high"`
   * 
   * ## `"critical"`
   */
  export type Priority = 'low' | 'medium' | 'high' | 'critical';
  /**
   * RACI role of a sign-off entry.
   * # Variants
   * 
   * ## `"responsible"`
   * 
   * R: does the work.
   * ## `"accountable"`
   * 
   * A: owns the outcome; an activity needs one to be fully signed.
   * ## `"consulted"`
   * 
   * C: consulted, e.g. a pull-request reviewer.
   * ## `"informed"`
   * 
   * I: kept informed.
   */
  export type RaciRole = 'responsible' | 'accountable' | 'consulted' | 'informed';
  /**
   * State of a sign-off entry.
   * # Variants
   * 
   * ## `"pending"`
   * 
   * ## `"approved"`
   * 
   * ## `"rejected"`
   */
  export type SignoffStatus = 'pending' | 'approved' | 'rejected';
  /**
   * Which ticket an action applies to. At least one field must be set;
   * the host tries them in this order and uses the first that resolves:
   * `guid`, then `external-id` (the integration-link table), then
   * `branch` (the host's branch convention, default `feat/ticket-{guid}`),
   * then `from-action`.
   */
  export interface TicketRef {
    /**
     * The ticket's own guid.
     */
    guid?: string,
    /**
     * This provider's id of a record linked to the ticket (an issue
     * key, a task gid, `owner/repo#12` for a pull request).
     */
    externalId?: string,
    /**
     * A source branch name; the host applies its branch convention.
     */
    branch?: string,
    /**
     * The index, in this same action list, of an earlier `create`
     * action: "the ticket that action created (or found)".
     */
    fromAction?: number,
  }
  /**
   * A named string value: a custom field of a ticket, e.g.
   * `tracker_key` = `SUP-12`. Names are snake_case ASCII.
   */
  export interface Field {
    name: string,
    value: string,
  }
  /**
   * Open a new ticket.
   */
  export interface CreateTicket {
    subject: string,
    description: string,
    priority: Priority,
    /**
     * E.g. `FEATURE`, `BUG`, `INCIDENT`, `TASK`.
     */
    ticketType: string,
    /**
     * E-mail of whoever asked for the work.
     */
    requestedBy?: string,
    /**
     * This provider's id for the record the ticket mirrors; the host
     * links it, and a second `create` with the same external id
     * returns the linked ticket instead of a duplicate.
     */
    externalId?: string,
    labels: Array<string>,
  }
  /**
   * Move a ticket to another status of the configured workflow.
   */
  export interface StatusChange {
    ticket: TicketRef,
    /**
     * Upper-case workflow status, e.g. `IN_PROGRESS`.
     */
    status: string,
    /**
     * E-mail of the actor.
     */
    changedBy: string,
  }
  /**
   * Add a comment to a ticket.
   */
  export interface AddComment {
    ticket: TicketRef,
    comment: string,
    /**
     * E-mail (or, for automation, a stable name) of the author.
     */
    commentedBy: string,
    /**
     * The provider's id of the comment, so the host can drop the echo
     * when the provider sends our own comment back.
     */
    externalCommentId?: string,
  }
  /**
   * Assign a ticket.
   */
  export interface Assign {
    ticket: TicketRef,
    /**
     * E-mail of the new assignee.
     */
    assignedTo: string,
    /**
     * E-mail of the actor.
     */
    assignedBy: string,
  }
  /**
   * Record a RACI sign-off. One entry per (ticket, activity, role,
   * email): a later sign-off updates it, a repeated one changes nothing.
   */
  export interface Signoff {
    ticket: TicketRef,
    /**
     * E.g. `Development`, `Outcome Monitoring`.
     */
    activity: string,
    role: RaciRole,
    email: string,
    signoffStatus: SignoffStatus,
  }
  /**
   * Link a pull request to a ticket (idempotent on repo and id).
   */
  export interface LinkPr {
    ticket: TicketRef,
    prId: string,
    /**
     * E.g. `workspace/repo`.
     */
    repo: string,
    url?: string,
  }
  /**
   * Set (or, with an empty value, clear) custom fields of a ticket.
   */
  export interface SetFields {
    ticket: TicketRef,
    fields: Array<Field>,
    /**
     * E-mail (or a stable automation name) of the actor.
     */
    changedBy: string,
  }
  /**
   * Change the ticket's own fields, as a provider's edit of its mirror
   * (a renamed Jira issue, a re-prioritised incident). Each is optional:
   * none leaves the field as it is.
   */
  export interface UpdateTicket {
    ticket: TicketRef,
    subject?: string,
    description?: string,
    priority?: Priority,
    ticketType?: string,
    /**
     * E-mail (or a stable automation name) of the actor.
     */
    changedBy: string,
  }
  /**
   * Resolve a ticket.
   */
  export interface Resolve {
    ticket: TicketRef,
    resolvedBy: string,
  }
  /**
   * Escalate a ticket.
   */
  export interface Escalate {
    ticket: TicketRef,
    escalatedBy: string,
    reason?: string,
  }
  /**
   * One ticket action.
   */
  export type Action = ActionCreate | ActionStatusChange | ActionComment | ActionAssign | ActionSignoff | ActionLinkPr | ActionResolve | ActionEscalate | ActionSetFields | ActionUpdate;
  export interface ActionCreate {
    tag: 'create',
    val: CreateTicket,
  }
  export interface ActionStatusChange {
    tag: 'status-change',
    val: StatusChange,
  }
  export interface ActionComment {
    tag: 'comment',
    val: AddComment,
  }
  export interface ActionAssign {
    tag: 'assign',
    val: Assign,
  }
  export interface ActionSignoff {
    tag: 'signoff',
    val: Signoff,
  }
  export interface ActionLinkPr {
    tag: 'link-pr',
    val: LinkPr,
  }
  export interface ActionResolve {
    tag: 'resolve',
    val: Resolve,
  }
  export interface ActionEscalate {
    tag: 'escalate',
    val: Escalate,
  }
  export interface ActionSetFields {
    tag: 'set-fields',
    val: SetFields,
  }
  export interface ActionUpdate {
    tag: 'update',
    val: UpdateTicket,
  }
  /**
   * What a mapper made of a delivery.
   */
  export interface Mapped {
    /**
     * The event the mapper recognised, snake_case, e.g. `pr_approved`;
     * kept in logs and history.
     */
    eventType: string,
    /**
     * The actions to apply, in order, in one transaction. Empty means
     * "ignored" (a bot's own message, an event nobody maps).
     */
    actions: Array<Action>,
  }
  /**
   * Why a mapper could not map.
   * # Variants
   * 
   * ## `"malformed-payload"`
   * 
   * The payload is not what this provider sends (not JSON, a
   * required field missing or of the wrong type).
   * ## `"unsupported-event"`
   * 
   * A well-formed event this mapper does not handle.
   * ## `"bad-config"`
   * 
   * The mapper config lacks something this delivery needs, e.g. a
   * user missing from the `user_directory`.
   * ## `"internal"`
   * 
   * A bug or an unexpected answer from the provider's API.
   */
  export type MapErrorKind = 'malformed-payload' | 'unsupported-event' | 'bad-config' | 'internal';
  export interface MapError {
    kind: MapErrorKind,
    /**
     * For the operator: names the field, header or key at fault.
     */
    message: string,
  }
  /**
   * A ticket as the host stores it.
   */
  export interface Ticket {
    guid: string,
    subject: string,
    description: string,
    /**
     * Upper-case workflow status.
     */
    status: string,
    priority: Priority,
    ticketType: string,
    assignee?: string,
    requestedBy?: string,
    labels: Array<string>,
    /**
     * RFC 3339, UTC.
     */
    createdAt: string,
    updatedAt: string,
    resolvedAt?: string,
    escalatedAt?: string,
    /**
     * When the ticket entered its current status (its creation for
     * a ticket that never moved).
     */
    statusChangedAt: string,
    /**
     * Custom fields, by name.
     */
    fields: Array<Field>,
  }
  /**
   * A provider's record linked to a ticket.
   */
  export interface Link {
    /**
     * The provider's configured name; `api` for links made through
     * the ticket API.
     */
    provider: string,
    /**
     * That provider's id of the record (a Tracker issue key, an Asana
     * task gid, `channel:ts` of a Slack message).
     */
    externalId: string,
  }
  /**
   * One field changed through the ticket API.
   */
  export interface FieldChange {
    /**
     * snake_case field name, e.g. `priority`.
     */
    field: string,
    oldValue?: string,
    newValue?: string,
  }
  /**
   * Why the stale-ticket sweeper speaks.
   * # Variants
   * 
   * ## `"direct"`
   * 
   * To the assignee of one ticket.
   * ## `"digest"`
   * 
   * The periodic digest of every stale ticket, for a channel.
   */
  export type NoticeKind = 'direct' | 'digest';
  /**
   * A stale-ticket sweeper notice.
   */
  export interface StaleNotice {
    /**
     * The configured rule's name.
     */
    rule: string,
    kind: NoticeKind,
    /**
     * Every ticket the notice covers (one for `direct`).
     */
    tickets: Array<Ticket>,
  }
  /**
   * What happened.
   */
  export type ChangeKind = ChangeKindApplied | ChangeKindUpdated | ChangeKindStale | ChangeKindLinked;
  /**
   * An action was applied (its ticket reference carries the guid).
   */
  export interface ChangeKindApplied {
    tag: 'applied',
    val: Action,
  }
  /**
   * Fields were changed through the ticket API.
   */
  export interface ChangeKindUpdated {
    tag: 'updated',
    val: Array<FieldChange>,
  }
  /**
   * The stale-ticket sweeper matched.
   */
  export interface ChangeKindStale {
    tag: 'stale',
    val: StaleNotice,
  }
  /**
   * A provider's mirror of the ticket was created and linked (an
   * outbound capture, or a `create` with an external id): e.g. the
   * Pachca rules reply with the Tracker key once Tracker has one.
   */
  export interface ChangeKindLinked {
    tag: 'linked',
    val: Link,
  }
  /**
   * A change the host offers to a provider's outbound rules.
   */
  export interface TicketChange {
    /**
     * Unique and stable across retries: use it as an idempotency key.
     */
    id: string,
    /**
     * The provider whose rules are asked (its configured name, e.g.
     * `slack`): its own records are the `links` of this provider.
     */
    provider: string,
    /**
     * RFC 3339, UTC.
     */
    at: string,
    /**
     * The provider whose delivery (or outbound capture) caused the
     * change; none for the API and the sweeper. The host offers a
     * change to its origin only when that provider's config asks for
     * its own changes (`outbound.own_changes`).
     */
    origin?: string,
    /**
     * The ticket after the change; none for a digest.
     */
    ticket?: Ticket,
    /**
     * Every provider's records linked to the ticket, oldest first.
     */
    links: Array<Link>,
    what: ChangeKind,
  }
  /**
   * What a captured id is.
   * # Variants
   * 
   * ## `"mirror"`
   * 
   * The provider's mirror of the ticket (an Asana task, a Jira
   * issue): linked to the ticket, so the provider's webhooks about
   * it resolve, and offered to other providers as `linked`.
   * ## `"echo"`
   * 
   * A record made on the ticket's behalf (a comment, a chat
   * message): remembered, so the provider's webhook about it is
   * dropped as our own echo.
   */
  export type CaptureKind = 'mirror' | 'echo';
  /**
   * An id to take from the response body.
   */
  export interface Capture {
    kind: CaptureKind,
    /**
     * A JSON pointer (RFC 6901) into the response body, e.g. `/ts`.
     * The value may be a string or a number.
     */
    pointer: string,
    /**
     * Put before the value, e.g. `C024BE91L:` for a Slack message
     * whose id is `channel:ts`. Empty for none.
     */
    prefix: string,
  }
  /**
   * An HTTP request to the provider's API, relative to its configured
   * base URL. The host adds the base URL and the credentials.
   */
  export interface OutboundRequest {
    /**
     * Upper-case HTTP method.
     */
    method: string,
    /**
     * Path and query relative to the base URL, starting with `/`.
     */
    path: string,
    /**
     * A header `sluice-api: <name>` sends the request to the
     * provider's extra API of that name (`api.extra.<name>` in the
     * host's config: its base URL, its credentials) instead of its
     * own; the host removes it, and refuses a name it does not know.
     * The reserved `tickets` API is read while mapping only.
     */
    headers: Array<Header>,
    body: Uint8Array,
    /**
     * What to remember from a successful response.
     */
    captures: Array<Capture>,
  }
  export interface Identity {
    provider: string,
    id: string,
  }
  /**
   * One person of the host's people directory.
   */
  export interface Person {
    email: string,
    /**
     * Display name, when known.
     */
    name?: string,
    /**
     * Their id at each provider, e.g. `{provider: "slack", id: "U024BE7LH"}`.
     */
    identities: Array<Identity>,
  }
  /**
   * How to find a person.
   */
  export type PersonKey = PersonKeyEmail | PersonKeyIdentity;
  /**
   * By e-mail, case-insensitive.
   */
  export interface PersonKeyEmail {
    tag: 'email',
    val: string,
  }
  /**
   * By a provider's id of them (a Slack user id, a GitHub login).
   */
  export interface PersonKeyIdentity {
    tag: 'identity',
    val: Identity,
  }
  /**
   * A read or write against the provider's API made while mapping.
   * 
   * Which API: the provider's own, unless a header `sluice-api: <name>`
   * names another. `<name>` is one of the provider's extra APIs
   * (`api.extra.<name>` in the host's config, e.g. a user directory
   * beside a chat), sent with that API's base URL, credentials,
   * timeout, size cap and GET cache; or `tickets`, the host's own
   * tickets, when the operator allows it (`api.read_tickets`): it
   * answers `GET /v1/tickets?…` with the ticket API's query parameters
   * (`field.<name>=` included) and JSON, and refuses any other method
   * or path. The host removes the header before sending; an unknown
   * name is `denied`. Every API shares the call's budget.
   */
  export interface ApiRequest {
    method: string,
    /**
     * Path and query relative to the chosen API's base URL.
     */
    path: string,
    headers: Array<Header>,
    body: Uint8Array,
  }
  export interface ApiResponse {
    status: number,
    headers: Array<Header>,
    body: Uint8Array,
  }
  /**
   * Why `provider-api` gave no response.
   */
  export type ApiError = ApiErrorDenied | ApiErrorBudgetExhausted | ApiErrorTimeout | ApiErrorTooLarge | ApiErrorUnavailable;
  /**
   * The request left the provider's base URL or is otherwise refused.
   */
  export interface ApiErrorDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * This delivery has used its call budget.
   */
  export interface ApiErrorBudgetExhausted {
    tag: 'budget-exhausted',
  }
  /**
   * No answer within the host's timeout.
   */
  export interface ApiErrorTimeout {
    tag: 'timeout',
  }
  /**
   * The response exceeded the host's size cap.
   */
  export interface ApiErrorTooLarge {
    tag: 'too-large',
  }
  /**
   * The network failed, or no recorded answer exists (test-mapper).
   */
  export interface ApiErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
