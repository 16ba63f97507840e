'use strict'
// Replays every tests/scenarios/*.json through the Node API (see tests/scenarios/README.md).
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { REPO, startServer, control, counters, reset, waitFor } = require('./helpers.js')
const wirecore = require('wirecore')

const dir = path.join(REPO, 'tests', 'scenarios')
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()

const OUTCOME_KEYS = new Set([
  'status',
  'error',
  'body',
  'body_contains',
  'body_len',
  'json',
  'json_absent',
  'headers',
  'absent_headers',
  'version',
  'reused',
])
const REQUEST_KEYS = new Set(['method', 'url', 'headers', 'body', 'timeout_ms'])

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

test('the scenario directory is not empty', () => {
  assert.ok(files.length >= 30, `${files.length} scenarios in ${dir}`)
})

function substitute(text) {
  const hostPort = (u) => u.replace(/^[a-z]+:\/\//, '')
  const map = {
    http: srv.http,
    https: srv.https,
    bad_tls: srv.bad_tls,
    mtls: srv.mtls,
    ca: srv.ca,
    client_cert: srv.client_cert,
    client_key: srv.client_key,
    blackhole: hostPort(srv.blackhole),
    silent: hostPort(srv.silent),
    dns: hostPort(srv.dns),
  }
  return text.replace(/\{([a-z_]+)\}/g, (m, k) => (Object.hasOwn(map, k) ? map[k] : m))
}

function subset(actual, expected, where) {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(actual !== null && typeof actual === 'object', `${where}: expected an object`)
    for (const [k, v] of Object.entries(expected)) subset(actual[k], v, `${where}.${k}`)
  } else {
    assert.deepEqual(actual, expected, where)
  }
}

async function runStep(client, step, where) {
  const { request: rq, outcome } = step
  for (const k of Object.keys(rq)) assert.ok(REQUEST_KEYS.has(k), `${where}: the Node runner cannot run request.${k}`)
  for (const k of Object.keys(outcome)) assert.ok(OUTCOME_KEYS.has(k), `${where}: the Node runner cannot check outcome.${k}`)
  let resp
  let body
  let error
  try {
    resp = await client.request({
      method: rq.method,
      url: rq.url,
      headers: rq.headers,
      body: rq.body,
      timeoutMs: rq.timeout_ms,
    })
    body = await resp.buffer()
  } catch (e) {
    error = e
  }
  if (outcome.error !== undefined) {
    assert.ok(error, `${where}: expected error ${outcome.error}, got status ${resp?.status}`)
    assert.equal(error.code, outcome.error, `${where}: ${error.message}`)
    assert.ok(error instanceof wirecore.errorClasses[outcome.error], `${where}: class ${error.constructor.name}`)
    return
  }
  if (error) throw new Error(`${where}: unexpected ${error.code}: ${error.message}`, { cause: error })
  if (outcome.status !== undefined) assert.equal(resp.status, outcome.status, `${where}: status`)
  if (outcome.version !== undefined) assert.equal(`HTTP/${resp.httpVersion}`, outcome.version, `${where}: version`)
  if (outcome.reused !== undefined) assert.equal(resp.reused, outcome.reused, `${where}: reused`)
  const text = body.toString('utf8')
  if (outcome.body !== undefined) assert.equal(text, outcome.body, `${where}: body`)
  if (outcome.body_contains !== undefined) assert.ok(text.includes(outcome.body_contains), `${where}: body contains`)
  if (outcome.body_len !== undefined) assert.equal(body.length, outcome.body_len, `${where}: body_len`)
  if (outcome.json !== undefined) subset(JSON.parse(text), outcome.json, `${where}: json`)
  for (const p of outcome.json_absent ?? []) {
    assert.equal(hasPath(JSON.parse(text), p), false, `${where}: ${p} should be absent: ${text.slice(0, 300)}`)
  }
  for (const [k, v] of Object.entries(outcome.headers ?? {})) assert.equal(resp.headers.get(k), v, `${where}: header ${k}`)
  for (const k of outcome.absent_headers ?? []) assert.equal(resp.headers.has(k), false, `${where}: header ${k} absent`)
}

/** Whether the dotted path `a.b.c` names a key of the JSON document. */
function hasPath(doc, dotted) {
  for (const key of dotted.split('.')) {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !Object.hasOwn(doc, key)) return false
    doc = doc[key]
  }
  return true
}

function checkCounter(actual, want) {
  if (want !== null && typeof want === 'object') {
    return (want.min === undefined || actual >= want.min) && (want.max === undefined || actual <= want.max)
  }
  return actual === want
}

for (const file of files) {
  const raw = fs.readFileSync(path.join(dir, file), 'utf8')
  const skip = JSON.parse(raw).skip?.node
  test(`scenario ${file}`, { skip }, async () => {
    const sc = JSON.parse(substitute(raw))
    assert.equal(`${sc.name}.json`, file)
    await reset(srv)
    for (const s of sc.script ?? []) await control(srv, 'POST', '/_control/script', s)
    const config = structuredClone(sc.config ?? {})
    if (config.tls === undefined) config.tls = { ca_files: [srv.ca] }
    const client = new wirecore.Client(config)
    try {
      for (const [i, step] of sc.steps.entries()) {
        const where = `${sc.name} step ${i}`
        const n = step.concurrency ?? 1
        await Promise.all(Array.from({ length: n }, () => runStep(client, step, where)))
      }
    } finally {
      await client.close({ timeoutMs: 2000 })
    }
    if (sc.server) {
      // Events the server sees after the client (closes, cancels) may need a short poll.
      const ok = await waitFor(async () => {
        const c = await counters(srv)
        return Object.entries(sc.server).every(([k, v]) => checkCounter(c[k], v)) ? c : null
      }, 3000)
      if (!ok) {
        const c = await counters(srv)
        for (const [k, v] of Object.entries(sc.server)) assert.ok(checkCounter(c[k], v), `${sc.name}: server ${k} = ${c[k]}, want ${JSON.stringify(v)}`)
      }
    }
  })
}
