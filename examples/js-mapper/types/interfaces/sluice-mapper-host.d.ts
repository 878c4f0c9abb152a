/// <reference path="./sluice-mapper-types.d.ts" />
declare module 'sluice:mapper/host@0.1.0' {
  /**
   * Write to the host's log, tagged with provider and delivery. Counts
   * against the per-call log volume limit.
   */
  export function log(level: LogLevel, message: string): void;
  /**
   * Call the provider's API through the host: it adds the base URL and
   * credentials, refuses other hosts and redirects elsewhere, enforces a
   * timeout, a response size cap and a per-delivery call budget, and may
   * cache GETs.
   */
  export function providerApi(request: ApiRequest): ApiResponse;
  /**
   * The ticket guid a branch name carries under the host's branch
   * convention (default `feat/ticket-{guid}`), if it carries one. Pure:
   * it does not say whether that ticket exists.
   */
  export function branchTicketGuid(branch: string): string | undefined;
  export type ApiRequest = import('sluice:mapper/types@0.1.0').ApiRequest;
  export type ApiResponse = import('sluice:mapper/types@0.1.0').ApiResponse;
  export type ApiError = import('sluice:mapper/types@0.1.0').ApiError;
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
