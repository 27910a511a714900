// The browser bundle of the chat page (built by server.ts with esbuild, served as /client.js):
// the typed client and the chat's contract, nothing from Node.
export { createClient } from '../../lib/client.js'
export { chatContract } from './contract.js'
