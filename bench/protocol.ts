/** Messages between the bench runner and a server process (over the child's IPC channel). */
export type ServerKind = 'ours' | 'ours-base' | 'ours-bare' | 'ours-lent' | 'ws' | 'ws-nobu' | 'fastify-websocket' | 'raw' | 'bun'

export interface ServerRequest {
  id: number
  cmd: 'stats' | 'gc' | 'broadcast' | 'burst' | 'snapshot'
  /** snapshot: where to write the heap snapshot */
  path?: string
  count?: number
  size?: number
}

export interface ServerReply {
  id: number
  port?: number
  cpu: NodeJS.CpuUsage
  /** process.hrtime in seconds when cpu was read (for CPU shares over the server's own interval) */
  time: number
  connections: number
  rss: number
  heapUsed: number
  /** external + arrayBuffers: socket buffers and Buffers live outside the JS heap */
  external: number
}
