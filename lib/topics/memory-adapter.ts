/**
 * The default topic adapter: one process, nothing to forward. The hub delivers every
 * publication to its local subscribers itself; presence is the local count.
 */
import type { TopicAdapter, TopicAdapterHost, TopicPublication } from './adapter.js'

export class MemoryTopicAdapter implements TopicAdapter {
  private host: TopicAdapterHost | null = null

  init (host: TopicAdapterHost): void {
    this.host = host
  }

  subscribe (_topic: string): void {}

  unsubscribe (_topic: string): void {}

  publish (_publication: TopicPublication): void {}

  subscriberCount (topic: string): Promise<number> {
    return Promise.resolve(this.host === null ? 0 : this.host.localCount(topic))
  }

  close (): Promise<void> {
    return Promise.resolve()
  }
}

/** The in-process adapter (the plugin's default `adapter`). */
export function memoryAdapter (): TopicAdapter {
  return new MemoryTopicAdapter()
}
