import type { FastifyInstance } from 'fastify'

export interface Seen { hiddenRoutes: string[], upgradeHooks: string[], errors: string[], initialized: number }
export function buildApp (websocket: unknown): Promise<{ app: FastifyInstance & Record<string, any>, seen: Seen, clients: Set<unknown> }>
