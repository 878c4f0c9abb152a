/// <reference path="./interfaces/sluice-mapper-host.d.ts" />
/// <reference path="./interfaces/sluice-mapper-types.d.ts" />
declare module 'sluice:mapper/mapper@0.2.0' {
  export type Delivery = import('sluice:mapper/types@0.2.0').Delivery;
  export type Mapped = import('sluice:mapper/types@0.2.0').Mapped;
  export type MapError = import('sluice:mapper/types@0.2.0').MapError;
  export type TicketChange = import('sluice:mapper/types@0.2.0').TicketChange;
  export type OutboundRequest = import('sluice:mapper/types@0.2.0').OutboundRequest;
  export type * as SluiceMapperHost020 from 'sluice:mapper/host@0.2.0'; // import sluice:mapper/host@0.2.0
  export type * as SluiceMapperTypes020 from 'sluice:mapper/types@0.2.0'; // import sluice:mapper/types@0.2.0
  /**
  * Inbound: a verified delivery and the provider's `mapper_config` (JSON
  * text) in; the event recognised and the ticket actions out.
  */
  export function mapToTicketEvent(delivery: Delivery, config: string): Mapped;
  /**
  * Outbound: a ticket change and the provider's `mapper_config` in; the
  * requests to send to the provider out (empty: nothing to send).
  */
  export function mapFromTicketEvent(change: TicketChange, config: string): Array<OutboundRequest>;
}
