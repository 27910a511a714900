'use strict'
// The CommonJS entry of the package: `require('fastify-rfc6455')` is the plugin function itself, as
// with other Fastify plugins, and carries `.default`, `.fastifyRfc6455` and every other named
// export of lib/index.ts (compiled to ./lib by `tsc -p tsconfig.cjs.json`).
const lib = require('./lib/index.js')

const plugin = lib.fastifyRfc6455
for (const name of Object.keys(lib)) {
  if (name !== 'default') plugin[name] = lib[name]
}
plugin.default = plugin
module.exports = plugin
