'use strict'
// setLogger: the engine's events reach a JS callback with their fields, on the JS thread.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { isMainThread } = require('node:worker_threads')
const { startServer, control, waitFor } = require('./helpers.js')
const { Client, ConnectError, setLogger } = require('wirecore')

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

test('setLogger: connection and retry records with their fields, on the JS thread', async () => {
  const got = []
  let onMain = true
  setLogger((r) => {
    onMain &&= isMainThread
    got.push(r)
  }, 'debug')
  try {
    const c = new Client({ retry: { maxAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 5 } })
    await control(srv, 'POST', '/_control/script', { path: '/s/node-log', replies: [{ status: 503 }, { status: 200 }] })
    assert.equal((await c.get(`${srv.http}/s/node-log`)).status, 200)
    const refused = `http://127.0.0.1:9`
    await assert.rejects(c.get(`${refused}/`), ConnectError)
    const find = (event, origin, ok) => got.find((r) => r.fields.event === event && r.fields.origin === origin && ok(r.fields))
    assert.ok(await waitFor(() => find('retry', refused, (f) => f.attempt === 2), 10000), 'the last retry came')
    const opened = find('connection_opened', srv.http, () => true)
    assert.ok(opened, 'a connection_opened record')
    assert.equal(opened.level, 'debug')
    assert.equal(opened.fields.protocol, 'h1')
    assert.match(opened.target, /^wirecore::/)
    assert.equal(typeof opened.timeMs, 'number')
    const retry = find('retry', srv.http, (f) => f.attempt === 1)
    assert.deepEqual([retry.fields.status, retry.fields.error_code, retry.fields.reason], [503, 'status', 'status'])
    for (const attempt of [1, 2]) {
      const r = find('retry', refused, (f) => f.attempt === attempt)
      assert.deepEqual([r.fields.error_code, r.fields.reason], ['connect', 'unsent'])
    }
    assert.ok(onMain, 'called on the JS thread')
    await c.close()
  } finally {
    setLogger(null)
  }
})

test('setLogger: off by default and after null; bad levels are refused', async () => {
  assert.throws(() => setLogger(() => {}, 'loud'), /log level/)
  assert.throws(() => setLogger(42), TypeError)
  const got = []
  setLogger((r) => got.push(r))
  setLogger(null)
  const c = new Client()
  await (await c.get(`${srv.http}/bytes/1`)).arrayBuffer()
  await c.close()
  await new Promise((r) => setTimeout(r, 200))
  assert.deepEqual(got, [])
})
