// The package as users install it: `npm pack` from a fresh copy of the sources (no dist/ built
// beforehand), installed into a temporary app that has its own fastify (from the npm cache, no
// network), then loaded with both `import` and `require`, registered, and serving a real
// WebSocket upgrade. The app's types are checked against the installed package as well.
// Needs git (the copy takes the files git knows) and npm on PATH.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { WebSocket as WsClient } from 'ws'

const run = promisify(execFile)
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const rootModules = join(root, 'node_modules')

/**
 * The environment of the commands a user would run: none of the npm_* variables of an outer
 * `npm test` nor tap's settings. tap adds its process-tracking loader to NODE_OPTIONS of every
 * process the test starts, so each command runs through `env -u NODE_OPTIONS`.
 */
function userEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) if (!/^(npm_|node_options$|tap|_tapjs_)/i.test(name)) env[name] = value
  return env
}

function asUser (command: string, args: string[]): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', command, ...args]]
}

async function npm (cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run(...asUser('npm', args), { cwd, env: userEnv(), timeout: 240_000, maxBuffer: 16 * 1024 * 1024 })
  return stdout
}

/** A fresh copy of the sources: the files git knows (tracked, or new and not ignored). */
async function freshCopy (into: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, maxBuffer: 16 * 1024 * 1024 })
  for (const file of stdout.split('\0')) {
    if (file === '' || !existsSync(join(root, file))) continue
    mkdirSync(dirname(join(into, file)), { recursive: true })
    copyFileSync(join(root, file), join(into, file))
  }
  // the build tools (tsc) of the project, as `npm install` in a clone would provide them
  symlinkSync(rootModules, join(into, 'node_modules'), 'dir')
}

const ESM_APP = `import Fastify from 'fastify'
import websocket, { fastifyRfc6455, WebSocket } from 'fastify-rfc6455'
if (websocket !== fastifyRfc6455 || typeof WebSocket !== 'function') throw new Error('unexpected exports')
const app = Fastify()
await app.register(websocket)
app.ws('/echo', (socket) => { socket.on('message', (data) => socket.send('esm:' + data)) })
await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(app.server.address().port + '\\n')
process.stdin.on('end', () => { app.close() })
process.stdin.resume()
`

const CJS_APP = `'use strict'
const Fastify = require('fastify')
const websocket = require('fastify-rfc6455')
const { fastifyRfc6455, WebSocket, CloseCode } = require('fastify-rfc6455')
if (typeof websocket !== 'function') throw new Error('require() is not the plugin function')
if (websocket.default !== websocket || fastifyRfc6455 !== websocket) throw new Error('default / named export differ')
if (typeof WebSocket !== 'function' || CloseCode.NormalClosure !== 1000) throw new Error('named exports missing')
const app = Fastify()
app.register(websocket)
app.register(async (child) => {
  child.ws('/echo', (socket) => { socket.on('message', (data) => socket.send('cjs:' + data)) })
})
app.listen({ host: '127.0.0.1', port: 0 }).then(() => {
  process.stdout.write(app.server.address().port + '\\n')
  process.stdin.on('end', () => { app.close() })
  process.stdin.resume()
})
`

const ESM_TYPES = `import Fastify from 'fastify'
import websocket, { type WebSocket } from 'fastify-rfc6455'
const app = Fastify()
await app.register(websocket, { maxPayload: 1024 })
app.ws('/a', (socket: WebSocket, request) => { socket.send(request.url) })
app.get('/b', { websocket: true }, (socket) => { socket.send('b') })
const open: number = app.websocketConnections.size
// @ts-expect-error not an option of the plugin
await app.register(websocket, { maxPayloadBytes: 1 })
export { open }
`

const CJS_TYPES = `import Fastify from 'fastify'
import websocket, { type WebSocket } from 'fastify-rfc6455'
const app = Fastify()
app.register(websocket, { maxPayload: 1024 })
app.ws('/a', (socket: WebSocket, request) => { socket.send(request.url) })
app.get('/b', { websocket: true }, (socket) => { socket.send('b') })
// @ts-expect-error not an option of the plugin
app.register(websocket, { maxPayloadBytes: 1 })
export const open: number = app.websocketConnections.size
`

interface LockEntry { version: string, dependencies?: Record<string, string>, optionalDependencies?: Record<string, string>, dev?: boolean, devOptional?: boolean, peer?: boolean }

/**
 * The app's package.json and package-lock.json: fastify and the package's own dependencies at
 * the versions (and tarball addresses, integrity) of this repository's lock, which the
 * repository's `npm install` put in the npm cache. With the lock, `npm ci --offline` needs no
 * registry metadata and no network.
 */
function writeApp (app: string, tarball: string): void {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string, license: string, dependencies: Record<string, string>, peerDependencies: Record<string, string>, peerDependenciesMeta?: Record<string, { optional?: boolean }> }
  const entries: Record<string, LockEntry> = {}
  // Node's lookup: <from>/node_modules/<name>, then each enclosing node_modules up to the root
  const find = (from: string, name: string): string | undefined => {
    for (let base = from; ; base = base.includes('/node_modules/') ? base.slice(0, base.lastIndexOf('/node_modules/')) : '') {
      const path = `${base === '' ? '' : base + '/'}node_modules/${name}`
      if (lock.packages[path] !== undefined) return path
      if (base === '') return undefined
    }
  }
  const add = (path: string): void => {
    if (entries[path] !== undefined) return
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = lock.packages[path]
    entries[path] = entry
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const found = find(path, name)
      if (found !== undefined) add(found)
    }
  }
  for (const name of ['fastify', ...Object.keys(own.dependencies)]) add(`node_modules/${name}`)
  const spec = `file:${relative(app, tarball)}`
  const dependencies = { fastify: lock.packages['node_modules/fastify'].version, 'fastify-rfc6455': spec }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies }))
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({
    name: 'app',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: 'app', version: '1.0.0', dependencies },
      // peerDependenciesMeta too: an optional peer (ioredis, for the Redis entry only) is not installed
      'node_modules/fastify-rfc6455': { version: own.version, resolved: spec, license: own.license, dependencies: own.dependencies, peerDependencies: own.peerDependencies, peerDependenciesMeta: own.peerDependenciesMeta },
      ...entries
    }
  }))
}

/** Start one app script, upgrade to WebSocket, echo once, stop it. Returns the reply. */
async function serveOnce (app: string, script: string): Promise<string> {
  const child = spawn(...asUser(process.execPath, [script]), { cwd: app, env: userEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = once(child, 'exit')
  try {
    let out = ''
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes('\n')) resolve(Number(out.trim()))
      })
      child.once('exit', (code) => reject(new Error(`${script} exited with ${String(code)} before listening: ${stderr}`)))
    })
    const client = new WsClient(`ws://127.0.0.1:${port}/echo`)
    await once(client, 'open')
    client.send('hi')
    const [reply] = await once(client, 'message') as [Buffer]
    client.close(1000)
    await once(client, 'close')
    return reply.toString()
  } finally {
    child.stdin.end()
    const [code] = await exited as [number | null]
    if (code !== 0) throw new Error(`${script} exited with ${String(code)}: ${stderr}`)
  }
}

// the whole file: two TypeScript builds, an install and four child processes take minutes on a
// busy machine (the .taprc default is 120 s per file)
t.setTimeout(600_000)

t.test('npm pack from a fresh copy, installed into an app with its own fastify', { timeout: 600_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'fastify-rfc6455-pack-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const source = join(work, 'source')
  const app = join(work, 'app')
  mkdirSync(source)
  mkdirSync(app)

  await freshCopy(source)
  t.notOk(existsSync(join(source, 'dist')), 'the copy has no build output')
  await npm(source, ['pack', '--pack-destination', work, '--silent'])
  const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz'))
  t.equal(tarballs.length, 1, 'one tarball')
  const tarball = join(work, tarballs[0])
  const { stdout: listing } = await run('tar', ['-tzf', tarball])
  const files = listing.split('\n')
  for (const file of ['dist/lib/index.js', 'dist/lib/index.d.ts', 'cjs/index.js', 'cjs/package.json', 'cjs/lib/index.js', 'cjs/lib/index.d.ts', 'README.md']) {
    t.ok(files.includes(`package/${file}`), `the tarball holds ${file} (built by prepare)`)
  }
  t.notOk(files.some((f) => f.startsWith('package/test/') || f.startsWith('package/lib/')), 'no tests or sources')

  writeApp(app, tarball)
  await npm(app, ['ci', '--offline', '--no-audit', '--no-fund', '--silent'])
  t.ok(existsSync(join(app, 'node_modules/fastify-rfc6455/cjs/index.js')), 'installed')
  t.notOk(existsSync(join(app, 'node_modules/fastify-rfc6455/node_modules/fastify')), 'one fastify: the app\'s (fastify is a peer dependency)')

  writeFileSync(join(app, 'esm.mjs'), ESM_APP)
  writeFileSync(join(app, 'cjs.cjs'), CJS_APP)
  t.equal(await serveOnce(app, 'esm.mjs'), 'esm:hi', 'import: registered, upgraded, echoed')
  t.equal(await serveOnce(app, 'cjs.cjs'), 'cjs:hi', 'require: registered, upgraded, echoed')

  // subpath exports (such as ./redis) resolve under both conditions once their module is in lib/
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
  for (const subpath of Object.keys(manifest.exports).filter((k) => k !== '.' && k !== './package.json')) {
    const name = subpath.slice(2)
    if (!existsSync(join(root, `lib/${name}.ts`))) {
      t.comment(`${subpath}: lib/${name}.ts is not in this tree yet`)
      continue
    }
    const specifier = `fastify-rfc6455/${name}`
    const { stdout: required } = await run(...asUser(process.execPath, ['-e', `process.stdout.write(require.resolve(${JSON.stringify(specifier)}))`]), { cwd: app, env: userEnv() })
    const { stdout: imported } = await run(...asUser(process.execPath, ['--input-type=module', '-e', `process.stdout.write(import.meta.resolve(${JSON.stringify(specifier)}))`]), { cwd: app, env: userEnv() })
    t.equal(relative(app, required), `node_modules/fastify-rfc6455/cjs/lib/${name}.js`, `require('${specifier}')`)
    t.equal(relative(app, fileURLToPath(imported)), `node_modules/fastify-rfc6455/dist/lib/${name}.js`, `import '${specifier}'`)
    t.ok(existsSync(join(app, 'node_modules/fastify-rfc6455/cjs/lib', `${name}.js`)) && existsSync(join(app, 'node_modules/fastify-rfc6455/dist/lib', `${name}.js`)), `${subpath} is built in both forms`)
  }

  // the types of each entry, each compiled on its own (as an ES module and as CommonJS)
  writeFileSync(join(app, 'esm-types.mts'), ESM_TYPES)
  writeFileSync(join(app, 'cjs-types.cts'), CJS_TYPES)
  for (const file of ['esm-types.mts', 'cjs-types.cts']) {
    const config = `tsconfig.${file}.json`
    writeFileSync(join(app, config), JSON.stringify({
      compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, esModuleInterop: true, types: ['node'], typeRoots: [join(rootModules, '@types')] },
      files: [file]
    }))
    const tsc = join(rootModules, '.bin/tsc')
    const result = await run(...asUser(tsc, ['-p', config]), { cwd: app, env: userEnv() }).then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
    t.equal(result, '', `${file}: the installed package's types compile against the app's fastify`)
  }
})
