import diagnostics from 'node:diagnostics_channel';

/**
 * Each part publishes start/end/error events on `tributary:<part>:<event>` channels; metrics and lineage
 * subscribe. Publishing costs nothing when no one subscribes.
 */
export function channel(part: string, event: string): diagnostics.Channel {
  return diagnostics.channel(`tributary:${part}:${event}`);
}

export function publish(ch: diagnostics.Channel, message: () => object): void {
  if (ch.hasSubscribers) ch.publish(message());
}
