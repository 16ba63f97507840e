'use strict'
// The dead-letter callback receives exactly the requests that failed after every retry, on the
// JS thread.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { isMainThread } = require('node:worker_threads')
const { startServer, control, waitFor } = require('./helpers.js')
const { Client, ConnectError } = require('wirecore')

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

test('onDeadLetter: exactly the requests that failed after retries, on the JS thread', async () => {
  const c = new Client({ retry: { maxAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 5 } })
  const got = []
  let onMain = true
  c.onDeadLetter((letter) => {
    onMain &&= isMainThread
    got.push(letter)
  })
  await control(srv, 'POST', '/_control/script', { path: '/s/flaky', replies: [{ status: 503 }, { status: 200 }] })
  assert.equal((await c.get(`${srv.http}/s/flaky`)).status, 200) // fixed by a retry
  assert.equal((await c.get(`${srv.http}/status/503`)).status, 503) // failed after 3 attempts
  assert.equal((await c.get(`${srv.http}/status/404`)).status, 404) // an answer, not a failure
  const refused = `http://127.0.0.1:9/x`
  await assert.rejects(
    c.request(refused, { method: 'POST', body: 'payload', headers: { authorization: 'Bearer s', 'x-trace': 't1' } }),
    ConnectError,
  )
  // Letters arrive in order: once this one is in, every earlier one is.
  const last = `${srv.http}/status/502`
  await (await c.get(last)).text()
  assert.ok(await waitFor(() => got.some((l) => l.url === last), 10000), 'the last letter came')
  assert.deepEqual(got.map((l) => l.url), [`${srv.http}/status/503`, refused, last])
  assert.ok(onMain, 'called on the JS thread')
  const [s, p] = got
  assert.deepEqual([s.method, s.errorCode, s.status, s.attempts], ['GET', 'status', 503, 3])
  assert.deepEqual([p.method, p.errorCode, p.attempts], ['POST', 'connect', 3])
  assert.equal(p.body.toString(), 'payload')
  assert.ok(p.headers.some(([k, v]) => k === 'x-trace' && v === 't1'), JSON.stringify(p.headers))
  assert.ok(!p.headers.some(([k]) => k === 'authorization'), 'credentials are left out')
  assert.ok(p.timeMs > 1.7e12)
  // The engine counts a letter delivered once its sink returned, which can be just after the
  // callback saw it: poll the count.
  await waitFor(() => c.stats().deadLetter.delivered === 3)
  assert.equal(c.stats().deadLetter.delivered, 3)
  await c.close()
})
