/**
 * The listener table of a WebSocket (memory per connection). Node's EventEmitter keeps its
 * listeners in `_events`, created as `{ __proto__: null }`: V8 makes such a literal a
 * dictionary-mode object, a hash table of about 180 bytes even for one listener. An object made
 * by a constructor whose prototype is an empty null-prototype object is in fast mode (a few
 * bytes per listener, its hidden class shared by every connection) and, like the dictionary,
 * has no inherited names (`toString`, `__proto__`... are ordinary event names). EventEmitter
 * only reads, writes and deletes own properties of the table, and installs a dictionary again
 * when the last listener goes, so behaviour is the same either way.
 */
import type { EventEmitter } from 'node:events'

const ListenerTable = function ListenerTable () {} as unknown as new () => object
ListenerTable.prototype = Object.create(null) as object

interface EmitterInternals { _events?: unknown, _eventsCount?: unknown }

/** Give a fresh emitter (no listeners yet) a fast-mode listener table. */
export function useListenerTable (emitter: EventEmitter): void {
  const internals = emitter as unknown as EmitterInternals
  // only where this Node keeps listeners as described above, and before any is added
  if (internals._eventsCount === 0 && typeof internals._events === 'object') internals._events = new ListenerTable()
}
