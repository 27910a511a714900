// The contract and the client are pure: esbuild bundles lib/client.ts for the browser with no
// Node built-in (a `node:` import would not resolve on platform 'browser') and none of the
// server's modules (connection, plugin, protocol).
import t from 'tap'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

t.test('fastify-rfc6455/client bundles for the browser without Node built-ins', async (t) => {
  const result = await build({
    entryPoints: [new URL('../../lib/client.ts', import.meta.url).pathname],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent'
  })
  t.same(result.errors, [])
  const inputs = Object.keys(result.metafile.inputs)
  t.ok(inputs.length > 0)
  t.same(inputs.filter((file) => !/lib\/(client|contract)(\/|\.ts$)/.test(file)), [], 'only lib/client and lib/contract in the bundle')
  const code = result.outputFiles[0].text
  t.notMatch(code, /\bnode:/, 'no node: specifier')
  t.notMatch(code, /require\(/, 'no require()')
  t.comment(`client bundle: ${code.length} bytes minified, ${gzipSync(code).length} gzipped`)
})

t.test('a node: import in the contract folder would fail the browser build', async (t) => {
  // the check above can fail: the same build of a module that imports a Node built-in errors
  await t.rejects(build({
    stdin: { contents: "import { createHash } from 'node:crypto'; export const h = createHash", resolveDir: new URL('.', import.meta.url).pathname },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent'
  }))
})
