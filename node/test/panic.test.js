'use strict'
// No panic strands a caller or aborts the process: every napi entry catches unwinding (the call
// throws), and a panic in an engine task still completes its operation, with code `internal`.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { startServer, waitFor } = require('./helpers.js')
const wirecore = require('wirecore')

// The generated loader of the installed package (not an export: these tests reach under `Client`).
const pkg = path.dirname(require.resolve('wirecore'))
const binding = require(path.join(pkg, 'binding.js'))
const { fromNative } = require(path.join(pkg, 'errors.js'))

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

function nativeClient() {
  const done = new Map()
  // Batches are flat (see index.js): id, status, headers, body, meta | id, 0, null, null, completion.
  const dispatcher = new binding.Dispatcher((batch) => {
    for (let i = 0; i < batch.length; i += 5) {
      done.set(batch[i], batch[i + 1] === 0 ? batch[i + 4] : { id: batch[i], status: batch[i + 1] })
    }
  })
  return { native: new binding.NativeClient(null, dispatcher), done }
}

test('a panic inside a napi call throws an Error; the process and the client live on', async () => {
  const { native, done } = nativeClient()
  for (let i = 0; i < 3; i++) {
    assert.throws(() => native.__panicForTests(), (e) => e instanceof Error && /panic requested by a test/.test(e.message))
  }
  let thrown
  try {
    native.__panicForTests()
  } catch (e) {
    thrown = fromNative(e)
  }
  assert.ok(thrown instanceof wirecore.InternalError, String(thrown))
  assert.equal(thrown.code, 'internal')
  native.request(1, 'GET', `${srv.http}/json`, null, null, null, null, false)
  assert.ok(await waitFor(() => done.get(1)), 'the request after the panics completed')
  assert.equal(done.get(1).status, 200)
})

test('a panic in an engine task completes the operation with code internal', async () => {
  const { native, done } = nativeClient()
  for (let id = 10; id < 20; id++) native.__panicForTests(id)
  assert.ok(await waitFor(() => done.size === 10), `completions: ${[...done.keys()]}`)
  for (const c of done.values()) {
    assert.equal(c.code, 'internal')
    assert.match(c.message, /panicked/)
    assert.ok(wirecore.errorClasses[c.code] === wirecore.InternalError)
  }
})

test('the addon refuses timeouts that would overflow a deadline, even bypassing index.js', async () => {
  const { native } = nativeClient()
  for (const v of [Number.MAX_VALUE, Infinity, NaN, -1, 365 * 24 * 3600 * 1000 + 1]) {
    assert.throws(
      () => native.request(2, 'GET', `${srv.http}/json`, null, null, null, v, false),
      (e) => /^\[wirecore:invalid_request\] timeoutMs must be/.test(e.message),
      String(v),
    )
    for (const [k, name] of [['connect', 'connectTimeoutMs'], ['read', 'readTimeoutMs'], ['pool', 'poolTimeoutMs']]) {
      assert.throws(
        () => native.request(3, 'GET', `${srv.http}/json`, null, null, null, null, false, null, null, { [k]: v }),
        (e) => e.message.startsWith(`[wirecore:invalid_request] ${name} must be`),
        `${k}: ${v}`,
      )
    }
  }
  // close() clamps instead: a huge drain time is the longest one, NaN none.
  const { native: n2, done: d2 } = nativeClient()
  n2.close(5, Number.MAX_VALUE)
  assert.ok(await waitFor(() => d2.get(5)), 'close completed')
  const { native: n3, done: d3 } = nativeClient()
  n3.close(6, NaN)
  assert.ok(await waitFor(() => d3.get(6)), 'close completed')
})
