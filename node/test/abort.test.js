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
  assert.ok(await waitFor(() => produced >= 5), 'the engine reads the upload')
  ac.abort()
  await assert.rejects(p, wirecore.AbortError)
  const at = produced
  await new Promise((r) => setTimeout(r, 200)) // proving that nothing more is read takes a wait
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

test('reading a streaming body after its signal fired rejects: never a silently truncated body', async () => {
  const ac = new AbortController()
  const r = await client.get(`${srv.http}/bytes/300000`, { signal: ac.signal })
  ac.abort()
  await assert.rejects(r.text(), wirecore.AbortError)
  const ac2 = new AbortController()
  const r2 = await client.get(`${srv.http}/bytes/300000`, { signal: ac2.signal })
  const it = r2[Symbol.asyncIterator]()
  assert.ok((await it.next()).value.length > 0)
  ac2.abort()
  await assert.rejects(it.next(), wirecore.AbortError)
})

/** A small seeded PRNG (mulberry32), so a failing plan can be replayed. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

test('1,000 aborts at random points (head, right after it, mid-body) leak no body slot or connection', async () => {
  const seed = Number(process.env.WIRECORE_ABORT_SEED ?? 0x5eed)
  const rand = prng(seed)
  const c = new wirecore.Client({ pool: { maxConnectionsPerHost: 1 }, tls: { caFiles: [srv.ca] } })
  // Bodies over the 64 KiB eager limit, so the head resolves first and the body streams.
  const paths = ['/drip?bytes=100000&chunks=10&delay_ms=2', '/stream?chunks=20&size=8192&delay_ms=1', '/bytes/200000']
  const plan = Array.from({ length: 1000 }, () => ({
    origin: rand() < 0.5 ? srv.http : srv.https,
    path: paths[Math.floor(rand() * paths.length)],
    // 0: after a random delay; 1: before the head (next macrotask); 2: right after the head;
    // 3: after some chunks; 4: AbortSignal.timeout.
    mode: Math.floor(rand() * 5),
    delayMs: Math.floor(rand() * 25),
    chunks: Math.floor(rand() * 4),
  }))
  const outcomes = { aborted: 0, completed: 0 }
  async function one(p) {
    const ac = new AbortController()
    const signal = p.mode === 4 ? AbortSignal.timeout(p.delayMs + 1) : ac.signal
    let timer = null
    if (p.mode === 0) timer = setTimeout(() => ac.abort(), p.delayMs)
    if (p.mode === 1) setImmediate(() => ac.abort())
    try {
      const r = await c.get(p.origin + p.path, { signal })
      if (p.mode === 2) ac.abort()
      let n = 0
      for await (const _ of r) if (p.mode === 3 && ++n > p.chunks) ac.abort()
      outcomes.completed++
    } catch (e) {
      if (!(e instanceof wirecore.AbortError)) throw new Error(`${JSON.stringify(p)}: ${e.code} ${e.message}`, { cause: e })
      outcomes.aborted++
    } finally {
      if (timer !== null) clearTimeout(timer)
      ac.abort()
    }
  }
  const deadline = Date.now() + 240_000
  for (let i = 0; i < plan.length; i += 25) {
    assert.ok(Date.now() < deadline, `only ${i} of ${plan.length} requests ran in time (seed ${seed})`)
    await Promise.all(plan.slice(i, i + 25).map(one))
  }
  console.log(`1,000 random aborts (seed ${seed}): ${JSON.stringify(outcomes)}, pool ${JSON.stringify(c.stats().pool)}`)
  assert.ok(outcomes.aborted > 500, JSON.stringify(outcomes))
  const idle = await waitFor(() => {
    const s = c.stats()
    return s.pool.active === 0 && s.pool.pending === 0 && s.pool.h2OpenStreams === 0 && s.requestsInFlight === 0
  }, 10_000)
  assert.ok(idle, `pool after the aborts (seed ${seed}): ${JSON.stringify(c.stats().pool)}`)
  for (const origin of [srv.http, srv.https]) {
    const r = await c.get(`${origin}/bytes/100000`, { poolTimeoutMs: 5000 })
    assert.equal((await r.buffer()).length, 100000)
  }
  await c.close()
})
