// The chat's messages, both directions, declared once: the server validates and dispatches with
// it, the page's bundled client sends and receives with it, GET /asyncapi.json documents it.
// Plain JSON Schema `as const` (typed like TypeBox's), so the browser bundle stays small.
import { defineContract } from '../../lib/client.js'

const Name = { type: 'string', minLength: 1, maxLength: 32 } as const
const Members = { type: 'array', items: { type: 'string' } } as const

export const chatContract = defineContract({
  client: {
    join: { type: 'object', properties: { room: Name, name: Name }, required: ['room', 'name'], additionalProperties: false },
    say: { type: 'object', properties: { text: { type: 'string', minLength: 1, maxLength: 500 } }, required: ['text'], additionalProperties: false },
    leave: { type: 'object', properties: {}, additionalProperties: false }
  },
  server: {
    message: {
      type: 'object',
      properties: { room: { type: 'string' }, from: { type: 'string' }, text: { type: 'string' }, at: { type: 'integer' } },
      required: ['room', 'from', 'text', 'at']
    },
    presence: { type: 'object', properties: { room: { type: 'string' }, members: Members }, required: ['room', 'members'] },
    notice: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }
  },
  replies: {
    join: { type: 'object', properties: { room: { type: 'string' }, name: { type: 'string' }, members: Members }, required: ['room', 'name', 'members'] },
    leave: { type: 'object', properties: {} }
  }
})
