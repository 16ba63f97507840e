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

// Every key a scenario file may use, per object; any other key fails the file.
const TOP_KEYS = new Set(['name', 'description', 'config', 'script', 'dns', 'steps', 'stats', 'server', 'skip'])
const STEP_KEYS = new Set(['request', 'outcome', 'concurrency', 'dns', 'wait_ms'])
const SCRIPT_KEYS = new Set(['path', 'replies'])
const DNS_KEYS = new Set(['name', 'ips', 'ttl', 'fail', 'remove', 'negative_ttl'])
const RANGE_KEYS = new Set(['min', 'max'])
const LANGUAGES = new Set(['rust', 'python', 'node', 'go', 'c'])
// Stats maps whose keys are data (origins, codes), not field names: Node keeps them as they are.
const STATS_DATA_MAPS = new Set(['origins', 'errors_by_code', 'responses_by_status_class', 'retries', 'services', 'endpoints'])
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
  'cache_status',
  'any_of',
])
const REQUEST_KEYS = new Set([
  'method',
  'url',
  'headers',
  'body',
  'timeout_ms',
  'priority',
  'redirect',
  'max_redirects',
  'cache',
  'balance_key',
  'traceparent',
  'tracestate',
])

let srv
const passed = []
const skipped = []
before(async () => {
  srv = await startServer()
})
after(() => {
  srv?.stop()
  const why = skipped.map(([f, r]) => `${f}: ${r}`).join('; ')
  console.log(`scenarios (node): ${passed.length} passed, ${skipped.length} skipped (${why})`)
})

test('the scenario directory is not empty', () => {
  assert.ok(files.length >= 80, `${files.length} scenarios in ${dir}`)
})

function keys(obj, allowed, what) {
  if (obj === undefined) return
  assert.ok(obj !== null && typeof obj === 'object' && !Array.isArray(obj), `${what} must be an object`)
  for (const k of Object.keys(obj)) assert.ok(allowed.has(k), `unknown key ${what}.${k}`)
}

/** Checks every key of the file before anything runs. */
function validate(sc) {
  keys(sc, TOP_KEYS, 'scenario')
  keys(sc.skip, LANGUAGES, 'skip')
  for (const e of sc.script ?? []) keys(e, SCRIPT_KEYS, 'script[]')
  for (const e of sc.dns ?? []) keys(e, DNS_KEYS, 'dns[]')
  for (const [k, v] of Object.entries(sc.server ?? {})) if (typeof v === 'object') keys(v, RANGE_KEYS, `server.${k}`)
  assert.ok(sc.steps?.length > 0, 'no steps')
  const alts = new Set([...OUTCOME_KEYS].filter((k) => k !== 'any_of'))
  for (const [i, st] of sc.steps.entries()) {
    keys(st, STEP_KEYS, `steps[${i}]`)
    for (const e of st.dns ?? []) keys(e, DNS_KEYS, `steps[${i}].dns[]`)
    assert.equal(st.request === undefined, st.outcome === undefined, `steps[${i}]: request and outcome go together`)
    keys(st.request, REQUEST_KEYS, `steps[${i}].request`)
    keys(st.outcome, OUTCOME_KEYS, `steps[${i}].outcome`)
    for (const a of st.outcome?.any_of ?? []) keys(a, alts, `steps[${i}].outcome.any_of[]`)
  }
}

const camel = (k) => k.replace(/_(.)/g, (_, c) => c.toUpperCase())
const isRange = (v) =>
  v !== null && typeof v === 'object' && Object.keys(v).length > 0 && Object.keys(v).every((k) => RANGE_KEYS.has(k))

/** The `stats` outcome against Node's camelCase stats: the scenario's names mapped mechanically. */
function checkStats(want, have, where, dataMap = false) {
  if (isRange(want)) {
    assert.equal(typeof have, 'number', `stats ${where}: ${have} is not a number`)
    assert.ok((want.min === undefined || have >= want.min) && (want.max === undefined || have <= want.max), `stats ${where}: ${have} not in ${JSON.stringify(want)}`)
  } else if (want !== null && typeof want === 'object') {
    assert.ok(have !== null && typeof have === 'object', `stats ${where}: expected an object, got ${have}`)
    for (const [k, v] of Object.entries(want)) {
      const name = dataMap ? k : camel(k)
      const p = where ? `${where}.${k}` : k
      assert.ok(Object.hasOwn(have, name), `stats ${p}: no such field (${name})`)
      checkStats(v, have[name], p, !dataMap && STATS_DATA_MAPS.has(k))
    }
  } else {
    assert.deepEqual(have, want, `stats ${where}`)
  }
}

function substitute(text) {
  const hostPort = (u) => u.replace(/^[a-z]+:\/\//, '')
  const map = {
    http: srv.http,
    http2: srv.http2,
    http3: srv.http3,
    https: srv.https,
    bad_tls: srv.bad_tls,
    mtls: srv.mtls,
    ca: srv.ca,
    client_cert: srv.client_cert,
    client_key: srv.client_key,
    blackhole: hostPort(srv.blackhole),
    silent: hostPort(srv.silent),
    dns: hostPort(srv.dns),
    http_port: new URL(srv.http).port,
    torture: srv.torture,
  }
  return text.replace(/\{([a-z0-9_]+)\}/g, (m, k) => (Object.hasOwn(map, k) ? map[k] : m))
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
      priority: rq.priority,
      redirect: rq.redirect,
      maxRedirects: rq.max_redirects,
      cache: rq.cache,
      balanceKey: rq.balance_key,
      traceparent: rq.traceparent,
      tracestate: rq.tracestate,
    })
    body = await resp.buffer()
  } catch (e) {
    error = e
  }
  checkOutcome(outcome, resp, body, error, where)
}

function checkOutcome(outcome, resp, body, error, where) {
  if (outcome.any_of !== undefined) {
    const why = []
    for (const alt of outcome.any_of) {
      try {
        checkOutcome(alt, resp, body, error, where)
        return
      } catch (e) {
        why.push(e.message)
      }
    }
    assert.fail(`${where}: no outcome of any_of matched: ${why.join('; ')}`)
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
  if (outcome.cache_status !== undefined) {
    assert.equal(resp.cacheStatus ?? 'none', outcome.cache_status, `${where}: cache_status`)
  }
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
  if (skip !== undefined) skipped.push([file, skip])
  // A skip is printed with its reason by node:test and counted in the summary above.
  test(`scenario ${file}`, { skip }, async () => {
    const sc = JSON.parse(substitute(raw))
    assert.equal(`${sc.name}.json`, file)
    validate(sc)
    await reset(srv)
    for (const s of sc.script ?? []) await control(srv, 'POST', '/_control/script', s)
    for (const d of sc.dns ?? []) await control(srv, 'POST', '/_control/dns', d)
    const config = structuredClone(sc.config ?? {})
    if (config.tls === undefined) config.tls = { ca_files: [srv.ca] }
    const client = new wirecore.Client(config)
    try {
      for (const [i, step] of sc.steps.entries()) {
        const where = `${sc.name} step ${i}`
        for (const d of step.dns ?? []) await control(srv, 'POST', '/_control/dns', d)
        // Time passing is the behaviour under test here (a breaker's open time).
        if (step.wait_ms !== undefined) await new Promise((r) => setTimeout(r, step.wait_ms))
        if (step.request === undefined) continue
        const n = step.concurrency ?? 1
        await Promise.all(Array.from({ length: n }, () => runStep(client, step, where)))
      }
      if (sc.stats !== undefined) checkStats(sc.stats, client.stats(), '')
    } finally {
      await client.close({ timeoutMs: 2000 })
    }
    if (sc.server) {
      const known = await counters(srv)
      for (const k of Object.keys(sc.server)) assert.ok(Object.hasOwn(known, k), `${sc.name}: unknown server counter ${k}`)
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
    passed.push(file)
  })
}
