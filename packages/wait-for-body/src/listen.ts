import type { EventEmitter } from 'node:events';

/** Adds each of `listeners` to `emitter` by event name; returns the function that takes them all off again. */
export function listen(emitter: EventEmitter, listeners: Record<string, Parameters<EventEmitter['on']>[1]>): () => void {
  const entries = Object.entries(listeners);
  for (const [event, listener] of entries) emitter.on(event, listener);
  return () => {
    for (const [event, listener] of entries) emitter.removeListener(event, listener);
  };
}
