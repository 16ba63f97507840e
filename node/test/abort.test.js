'use strict'
// AbortSignal cancels the work in the engine: the server sees the request abandoned.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startServer, counters, reset, waitFor } = require('./helpers.js')
const wirecore = require('wirecore')

let srv
let client
before(async () => {
  srv = await startServer()
  client = new wirecore.Client({ tls: { caFiles: [srv.ca] } })
})
after(async () => {
  await client?.close()
  srv?.stop()
})

for (const proto of ['http', 'https']) {
  test(`abort while waiting for the head cancels in the engine (${proto})`, async () => {
    await reset(srv)
    const ac = new AbortController()
    const p = client.get(`${srv[proto]}/hang`, { signal: ac.signal })
    assert.ok(await waitFor(async () => (await counters(srv)).requests_in_flight === 1), 'request reached the server')
    const reason = new Error('user gave up')
    ac.abort(reason)
    await assert.rejects(p, (e) => {
      assert.ok(e instanceof wirecore.AbortError)
      assert.equal(e.name, 'AbortError')
      assert.equal(e.code, 'cancelled')
      assert.equal(e.cause, reason)
      return true
    })
    const c = await waitFor(async () => {
      const c = await counters(srv)
      return c.requests_cancelled === 1 && c.requests_in_flight === 0 ? c : null
    })
    assert.ok(c, 'server saw the cancellation')
  })
}

test('abort while streaming the body cancels the read and the response', async () => {
  await reset(srv)
  const ac = new AbortController()
  const r = await client.get(`${srv.http}/drip?bytes=100000&chunks=50&delay_ms=100`, { signal: ac.signal })
  const it = r[Symbol.asyncIterator]()
  await it.next()
  setTimeout(() => ac.abort(), 50)
  await assert.rejects(
    (async () => {
      for (;;) if ((await it.next()).done) break
    })(),
    (e) => e instanceof wirecore.AbortError,
  )
  assert.ok(await waitFor(async () => (await counters(srv)).requests_cancelled === 1), 'server saw the cancellation')
})

test('an already-aborted signal rejects without any I/O', async () => {
  await reset(srv)
  const ac = new AbortController()
  ac.abort()
  await assert.rejects(client.get(`${srv.http}/json`, { signal: ac.signal }), wirecore.AbortError)
  await assert.rejects(client.get(`${srv.http}/json`, { signal: AbortSignal.abort() }), wirecore.AbortError)
  assert.equal((await counters(srv)).requests, 0)
})

test('AbortSignal.timeout works as a signal; a finished request ignores a later abort', async () => {
  await assert.rejects(
    client.get(`${srv.http}/delay/5000`, { signal: AbortSignal.timeout(100) }),
    (e) => e instanceof wirecore.AbortError && e.cause?.name === 'TimeoutError',
  )
  const ac = new AbortController()
  const r = await client.get(`${srv.http}/json`, { signal: ac.signal })
  ac.abort()
  assert.equal((await r.json()).n, 42)
})

test('abort during a streamed upload stops the upload', async () => {
  await reset(srv)
  const ac = new AbortController()
  let produced = 0
  async function* slow() {
    for (let i = 0; i < 1000; i++) {
      produced++
      yield Buffer.alloc(1024)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  const p = client.post(`${srv.http}/upload`, { body: slow(), signal: ac.signal })
  setTimeout(() => ac.abort(), 150)
  await assert.rejects(p, wirecore.AbortError)
  const at = produced
  await new Promise((r) => setTimeout(r, 200))
  assert.ok(produced <= at + 2, `source stopped (${at} → ${produced})`)
  assert.ok(await waitFor(async () => (await counters(srv)).requests_in_flight === 0))
})

test('many aborted requests leave the client healthy', async () => {
  const c = new wirecore.Client({ pool: { maxConnectionsPerHost: 4 } })
  const ps = []
  for (let i = 0; i < 200; i++) {
    const ac = new AbortController()
    ps.push(c.get(`${srv.http}/delay/1000`, { signal: ac.signal }).catch((e) => e.code))
    setTimeout(() => ac.abort(), i % 20)
  }
  const codes = await Promise.all(ps)
  assert.ok(codes.every((x) => x === 'cancelled'))
  assert.equal((await c.get(`${srv.http}/bytes/10`)).status, 200)
  assert.equal(c.stats().requestsInFlight, 0)
  await c.close()
})
