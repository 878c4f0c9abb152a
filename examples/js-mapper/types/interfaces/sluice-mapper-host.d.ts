/// <reference path="./sluice-mapper-types.d.ts" />
declare module 'sluice:mapper/host@0.2.0' {
  /**
   * Write to the host's log, tagged with provider and delivery. Counts
   * against the per-call log volume limit.
   */
  export function log(level: LogLevel, message: string): void;
  /**
   * Call the provider's API through the host (or another API of the
   * provider's, or the host's tickets: see `api-request`): it adds the
   * base URL and credentials, refuses other hosts and redirects
   * elsewhere, enforces a timeout, a response size cap and a
   * per-delivery call budget, and may cache GETs.
   */
  export function providerApi(request: ApiRequest): ApiResponse;
  /**
   * The ticket guid a branch name carries under the host's branch
   * convention (default `feat/ticket-{guid}`), if it carries one. Pure:
   * it does not say whether that ticket exists.
   */
  export function branchTicketGuid(branch: string): string | undefined;
  /**
   * The people directory: one person, their e-mail and their id at
   * each provider, shared by every mapper. None when nobody matches.
   */
  export function findPerson(key: PersonKey): Person | undefined;
  /**
   * This provider's mapper state (a history cursor, a sync token): the
   * value under `key`, as this call sees it (its own `state-set`s
   * included). Keys up to 128 bytes, values up to 4 KiB.
   */
  export function stateGet(key: string): string | undefined;
  /**
   * Compare-and-set: stores `value` (none deletes) when the current
   * value equals `expected`; false, changing nothing, when it does not.
   * Writes are committed with the delivery's outcome, never before: a
   * mapping that fails or is retried leaves the state as it was.
   */
  export function stateSet(key: string, value: string | undefined, expected: string | undefined): boolean;
  export type ApiRequest = import('sluice:mapper/types@0.2.0').ApiRequest;
  export type ApiResponse = import('sluice:mapper/types@0.2.0').ApiResponse;
  export type ApiError = import('sluice:mapper/types@0.2.0').ApiError;
  export type Person = import('sluice:mapper/types@0.2.0').Person;
  export type PersonKey = import('sluice:mapper/types@0.2.0').PersonKey;
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
