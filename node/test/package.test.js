'use strict'
// The installed package: CommonJS and ESM entries, the files a user gets, the version.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

test('require() and import give the same API', async () => {
  const cjs = require('wirecore')
  const esm = await import('wirecore')
  assert.equal(typeof cjs.Client, 'function')
  assert.equal(esm.Client, cjs.Client)
  assert.equal(esm.default.Client, cjs.Client)
  assert.equal(esm.WirecoreError, cjs.WirecoreError)
  assert.equal(typeof esm.errorCodes, 'function')
  assert.equal(esm.fetch, cjs.fetch)
  assert.match(cjs.version, /^\d+\.\d+\.\d+/)
  // Every CommonJS export is an ESM export too (setLogger once was not).
  for (const k of Object.keys(cjs)) assert.equal(esm[k], cjs[k], `import { ${k} } from 'wirecore'`)
})

test('the package ships its types and addon and nothing from the source tree', () => {
  const root = path.dirname(require.resolve('wirecore/package.json'))
  const pkg = require('wirecore/package.json')
  assert.equal(pkg.name, 'wirecore')
  assert.equal(pkg.version, require('wirecore').version)
  const files = fs.readdirSync(root)
  for (const f of ['index.js', 'index.mjs', 'index.d.ts', 'config.d.ts', 'errors.js', 'binding.js', 'binding.d.ts']) {
    assert.ok(files.includes(f), `${f} is packed`)
  }
  assert.ok(files.some((f) => f.endsWith('.node')), 'the addon is packed')
  for (const f of ['src', 'Cargo.toml', 'test', 'node_modules']) assert.ok(!files.includes(f), `${f} is not packed`)
})

test('the stats object has every field index.d.ts declares', () => {
  const { Client } = require('wirecore')
  const root = path.dirname(require.resolve('wirecore/package.json'))
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const block = (name) => {
    const m = new RegExp(`export interface ${name} (?:extends \\w+ )?\\{([\\s\\S]*?)\\n\\}`).exec(dts)
    assert.ok(m, `interface ${name} in index.d.ts`)
    return [...m[1].matchAll(/^ {2}(\w+)\??:/gm)].map((x) => x[1])
  }
  const c = new Client()
  const s = c.stats()
  assert.deepEqual(Object.keys(s).sort(), block('Stats').sort())
  assert.deepEqual(Object.keys(s.latency).sort(), block('LatencySummary').sort())
  assert.deepEqual(Object.keys(s.dns).sort(), block('DnsStats').sort())
  assert.deepEqual(Object.keys(s.pool).sort(), block('PoolStats').sort())
  assert.deepEqual(Object.keys(s.pool.evictions).sort(), block('Evictions').sort())
  assert.deepEqual(Object.keys(s.resilience).sort(), block('ResilienceStats').sort())
  assert.deepEqual(Object.keys(s.resilience.rateLimit).sort(), block('RateLimitStats').sort())
  assert.deepEqual(Object.keys(s.resilience.breakerRedis).sort(), block('BreakerRedisStats').sort())
  assert.deepEqual(Object.keys(s.cache).sort(), block('CacheStats').sort())
  const d = c.diagnostics()
  assert.deepEqual(Object.keys(d).sort(), block('Diagnostics').sort())
})
