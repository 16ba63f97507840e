'use strict'
// Node's stats carry the core's field names in mechanical camelCase (data-map keys as they are),
// both in a real client's snapshot and in index.d.ts: tests/stats-fields.json, generated from
// wirecore::Stats (`make stats-fields`), is the reference.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { REPO, startServer } = require('./helpers.js')
const { Client } = require('wirecore')

const FIELDS = JSON.parse(fs.readFileSync(path.join(REPO, 'tests', 'stats-fields.json'), 'utf8'))

/** `requests_in_flight` → `requestsInFlight`, as node/src/config.rs `camel` renames. */
const camel = (k) => k.replace(/_(.)/g, (_, c) => c.toUpperCase())

/** The reference tree with every field name in camelCase; `*` (a data map's keys) kept. */
function camelTree(shape) {
  if (typeof shape !== 'object') return 'leaf'
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k === '*' ? k : camel(k), camelTree(v)]))
}

/** Where `value` (a snapshot) and `shape` differ; a data map of records must not be empty. */
function differences(value, shape, where = '') {
  if (shape === 'leaf') return []
  const at = where || 'stats'
  if (value === null || typeof value !== 'object') return [`${at} is not an object`]
  if (Object.keys(shape).length === 1 && '*' in shape) {
    if (shape['*'] !== 'leaf' && Object.keys(value).length === 0) return [`${at} is empty: fill it to check its records`]
    return Object.entries(value).flatMap(([k, v]) => differences(v, shape['*'], `${where}${k}.`))
  }
  const out = []
  for (const k of Object.keys(shape)) {
    if (!(k in value)) out.push(`${where}${k} is missing`)
    else out.push(...differences(value[k], shape[k], `${where}${k}.`))
  }
  for (const k of Object.keys(value)) if (!(k in shape)) out.push(`${where}${k} is not a core field`)
  return out
}

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

test('a real client’s stats use the core’s names in mechanical camelCase', async () => {
  const c = new Client({
    rateLimit: { enabled: true, requests: 1000, perMs: 1000 },
    breaker: { enabled: true, consecutiveFailures: 3 },
    concurrency: { enabled: true, initialLimit: 10 },
    services: { svc: { endpoints: [{ url: srv.http }] } },
  })
  for (const url of [`${srv.http}/bytes/1`, 'http://svc/bytes/1']) {
    const r = await c.get(url)
    assert.equal(r.status, 200)
    await r.dump()
  }
  const stats = c.stats()
  await c.close()
  const want = camelTree(FIELDS)
  assert.deepEqual(differences(stats, want), [])
  stats.pool.connectz = stats.pool.connects
  delete stats.pool.connects
  assert.deepEqual(differences(stats, want), ['pool.connects is missing', 'pool.connectz is not a core field'])
})

test('index.d.ts declares Stats with exactly those names', () => {
  // The TypeScript compiler of node/ (a devDependency) reads the installed package's index.d.ts.
  const ts = require(path.join(REPO, 'node', 'node_modules', 'typescript'))
  const dts = path.join(path.dirname(require.resolve('wirecore/package.json')), 'index.d.ts')
  const program = ts.createProgram([dts], { strict: true, noEmit: true, types: [] })
  const checker = program.getTypeChecker()
  const file = program.getSourceFile(dts)
  const stats = checker.getSymbolAtLocation(file).exports.get('Stats')
  assert.ok(stats, 'index.d.ts exports no Stats')
  /** A declared type as a field tree: interfaces by property, `Record<string, T>` as `{'*': T}`. */
  function tree(type) {
    type = checker.getNonNullableType(type)
    if (!(type.flags & ts.TypeFlags.Object)) return 'leaf'
    const props = checker.getPropertiesOfType(type)
    if (props.length === 0) {
      const index = type.getStringIndexType()
      return index ? { '*': tree(index) } : 'leaf'
    }
    return Object.fromEntries(props.map((p) => [p.name, tree(checker.getTypeOfSymbol(p))]))
  }
  const declared = tree(checker.getDeclaredTypeOfSymbol(stats))
  const want = camelTree(FIELDS)
  const diff = []
  const walk = (d, w, where) => {
    if (w === 'leaf' || d === 'leaf') {
      if (w !== d) diff.push(`${where || 'Stats'}: index.d.ts ${d === 'leaf' ? 'has a leaf' : 'has an object'}, the core the other`)
      return
    }
    for (const k of Object.keys(w)) {
      if (!(k in d)) diff.push(`${where}${k} is not declared`)
      else walk(d[k], w[k], `${where}${k}.`)
    }
    for (const k of Object.keys(d)) if (!(k in w)) diff.push(`${where}${k} is declared but not a core field`)
  }
  walk(declared, want, '')
  assert.deepEqual(diff, [])
})
