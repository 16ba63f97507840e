'use strict'
// The Client API against the test server: config, requests, responses, bodies, errors, stats.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Readable } = require('node:stream')
const { startServer, counters, reset, control, waitFor } = require('./helpers.js')
const wirecore = require('wirecore')

const { Client } = wirecore

let srv
let client
before(async () => {
  srv = await startServer()
  client = new Client({ tls: { caFiles: [srv.ca] } })
})
after(async () => {
  await client?.close()
  srv?.stop()
})

test('config: camelCase keys reach the core', async () => {
  const c = new Client({ pool: { maxConnectionsPerHost: 1 }, defaultHeaders: { 'X-Team': 'node' } })
  const [a, b] = await Promise.all([c.get(`${srv.http}/headers`), c.get(`${srv.http}/delay/20`)])
  assert.equal((await a.json()).headers['x-team'], 'node')
  await b.text()
  assert.equal(c.stats().origins[srv.http].connects, 1)
  await c.close()
})

test('config: snake_case (the core JSON) is accepted too', async () => {
  const c = new Client({ pool: { max_idle_per_host: 2 }, user_agent: 'ua-test/1' })
  const r = await c.get(`${srv.http}/headers`)
  assert.equal((await r.json()).headers['user-agent'], 'ua-test/1')
  await c.close()
})

test('config: an unknown key throws a ConfigError naming it as written', () => {
  assert.throws(
    () => new Client({ pool: { maxIdle: 3 } }),
    (e) => {
      assert.ok(e instanceof wirecore.ConfigError)
      assert.ok(e instanceof wirecore.WirecoreError)
      assert.equal(e.code, 'invalid_config')
      assert.match(e.message, /pool\.maxIdle/)
      assert.match(e.message, /maxIdlePerHost/)
      return true
    },
  )
  assert.throws(() => new Client({ nope: 1 }), (e) => e.code === 'invalid_config' && /nope/.test(e.message))
})

test('config: a wrong type throws naming the field', () => {
  assert.throws(
    () => new Client({ timeouts: { totalMs: 'soon' } }),
    (e) => e instanceof wirecore.ConfigError && /timeouts\.totalMs/.test(e.message),
  )
  assert.throws(() => new Client('pool'), TypeError)
  assert.throws(() => new Client([]), TypeError)
})

test('GET: status, version, headers, url, reused, timings', async () => {
  await reset(srv)
  const c = new Client()
  const r1 = await c.get(`${srv.http}/json`)
  assert.equal(r1.status, 200)
  assert.equal(r1.ok, true)
  assert.equal(r1.httpVersion, '1.1')
  assert.equal(r1.url, `${srv.http}/json`)
  assert.equal(r1.reused, false)
  assert.ok(r1.headers instanceof Headers)
  assert.equal(r1.headers.get('Content-Type'), 'application/json')
  assert.ok(r1.rawHeaders().some(([n]) => n === 'content-length'))
  assert.ok(r1.timings.totalMs > 0)
  assert.ok(r1.timings.connectMs > 0)
  assert.ok(r1.timings.totalMs >= r1.timings.ttfbMs)
  assert.equal((await r1.json()).n, 42)
  const r2 = await c.get(new URL(`${srv.http}/json`))
  assert.equal(r2.reused, true)
  assert.equal(r2.timings.connectMs, 0)
  await r2.text()
  assert.equal((await counters(srv)).connections_accepted, 1)
  await c.close()
})

test('HTTP/2 over TLS with the server CA', async () => {
  const r = await client.get(`${srv.https}/json`)
  assert.equal(r.status, 200)
  assert.equal(r.httpVersion, '2.0')
  assert.ok(r.timings.tlsMs > 0 || r.reused)
})

test('request(): options object, methods, query, repeated headers', async () => {
  const r = await client.request({
    method: 'put',
    url: `${srv.http}/echo?a=1&b=2`,
    headers: [
      ['x-multi', 'one'],
      ['x-multi', 'two'],
    ],
    body: 'payload',
  })
  const j = await r.json()
  assert.equal(j.method, 'PUT')
  assert.equal(j.query, 'a=1&b=2')
  assert.equal(j.body, 'payload')
  const h = await (await client.get(`${srv.http}/headers`, { headers: new Headers({ 'x-h': 'v' }) })).json()
  assert.equal(h.headers['x-h'], 'v')
  const m = await (await client.get(`${srv.http}/headers`, { headers: new Map([['x-m', 'w']]) })).json()
  assert.equal(m.headers['x-m'], 'w')
  for (const method of ['post', 'patch', 'delete', 'options']) {
    const e = await (await client[method](`${srv.http}/echo`)).json()
    assert.equal(e.method, method.toUpperCase())
  }
  const head = await client.head(`${srv.http}/bytes/100`)
  assert.equal(head.headers.get('content-length'), '100')
  assert.equal((await head.arrayBuffer()).byteLength, 0)
})

test('request bodies: string, Buffer, Uint8Array, ArrayBuffer, json, URLSearchParams', async () => {
  const bodies = [
    ['héllo', 'héllo'],
    [Buffer.from('buf'), 'buf'],
    [new TextEncoder().encode('u8'), 'u8'],
    [new TextEncoder().encode('ab').buffer, 'ab'],
    [new DataView(new TextEncoder().encode('xdvx').buffer, 1, 2), 'dv'],
  ]
  for (const [body, want] of bodies) {
    const j = await (await client.post(`${srv.http}/echo`, { body })).json()
    assert.equal(j.body, want)
  }
  const j = await (await client.post(`${srv.http}/echo`, { json: { a: [1, 2] } })).json()
  assert.deepEqual(JSON.parse(j.body), { a: [1, 2] })
  assert.equal(j.headers['content-type'], 'application/json')
  const f = await (await client.post(`${srv.http}/echo`, { body: new URLSearchParams({ q: 'a b' }) })).json()
  assert.equal(f.body, 'q=a+b')
  assert.match(f.headers['content-type'], /x-www-form-urlencoded/)
})

test('request bodies: streamed from a web ReadableStream, a Node Readable and an async generator', async () => {
  const size = 3 * 1024 * 1024
  const block = Buffer.alloc(64 * 1024, 7)
  const n = size / block.length
  const web = new ReadableStream({
    start(controller) {
      for (let i = 0; i < n; i++) controller.enqueue(block)
      controller.close()
    },
  })
  async function* gen() {
    for (let i = 0; i < n; i++) yield block
  }
  const nodeStream = Readable.from(gen())
  for (const body of [web, nodeStream, gen()]) {
    const r = await client.post(`${srv.http}/upload`, { body })
    assert.equal(r.status, 200)
    assert.equal((await r.json()).body_len, size)
  }
  const strings = await (
    await client.post(`${srv.http}/echo`, {
      body: (async function* () {
        yield 'a'
        yield 'b'
      })(),
    })
  ).json()
  assert.equal(strings.body, 'ab')
})

test('request bodies: a failing stream fails the request', async () => {
  async function* bad() {
    yield 'start'
    throw new Error('source broke')
  }
  await assert.rejects(client.post(`${srv.http}/upload`, { body: bad() }), wirecore.WirecoreError)
  // The client still works afterwards.
  assert.equal((await client.get(`${srv.http}/bytes/10`)).status, 200)
})

test('response bodies: arrayBuffer, bytes, text, json, read once', async () => {
  const r = await client.get(`${srv.http}/bytes/1000`)
  const ab = await r.arrayBuffer()
  assert.ok(ab instanceof ArrayBuffer)
  assert.equal(ab.byteLength, 1000)
  const u8 = new Uint8Array(ab)
  assert.equal(u8[300], 300 % 251)
  assert.equal(r.bodyUsed, true)
  await assert.rejects(r.text(), TypeError)
  const b = await (await client.get(`${srv.http}/bytes/5`)).bytes()
  assert.ok(b instanceof Uint8Array)
  assert.deepEqual([...b], [0, 1, 2, 3, 4])
  const bad = await client.get(`${srv.http}/bytes/10`)
  await assert.rejects(bad.json(), (e) => e instanceof wirecore.BodyError && e.code === 'decode')
})

test('response bodies: large bodies stream as ReadableStream and async iterator', async () => {
  const size = 4 * 1024 * 1024
  const r = await client.get(`${srv.http}/bytes/${size}`)
  let n = 0
  let chunks = 0
  let ok = true
  for await (const c of r.body) {
    assert.ok(c instanceof Uint8Array)
    for (let i = 0; i < c.length; i += 4099) if (c[i] !== (n + i) % 251) ok = false
    n += c.length
    chunks++
  }
  assert.ok(ok, 'pattern intact')
  assert.equal(n, size)
  assert.ok(chunks > 1)
  const r2 = await client.get(`${srv.http}/stream?chunks=20&size=1000&delay_ms=5`)
  let m = 0
  let parts = 0
  for await (const c of r2) {
    m += c.length
    parts++
  }
  assert.equal(m, 20_000)
  assert.ok(parts >= 2, `streamed in ${parts} parts`)
  const big = await (await client.get(`${srv.https}/bytes/${size}`)).arrayBuffer()
  assert.equal(big.byteLength, size)
})

test('response bodies: the first chunk arrives before the body ends', async () => {
  // Chunks 300 ms apart, 3 s in all: a first chunk within 2 s did not wait for the whole body, and
  // a slow machine has 1.7 s of slack.
  const r = await client.get(`${srv.http}/drip?bytes=100000&chunks=10&delay_ms=300`)
  const t0 = Date.now()
  const reader = r.body.getReader()
  const first = await reader.read()
  assert.ok(first.value.length > 0)
  assert.ok(Date.now() - t0 < 2000, `first chunk after ${Date.now() - t0} ms`)
  await reader.cancel()
})

test('response bodies: dropping a stream unread releases the connection slot', async () => {
  const c = new Client({ pool: { maxConnectionsPerHost: 1 }, timeouts: { poolAcquireMs: 2000 } })
  const r = await c.get(`${srv.http}/bytes/${1 << 20}`)
  const reader = r.body.getReader()
  await reader.read()
  await reader.cancel()
  const r2 = await c.get(`${srv.http}/bytes/10`)
  assert.equal(r2.status, 200)
  await c.close()
})

test('redirects are followed; url is the final one', async () => {
  const r = await client.get(`${srv.http}/redirect/2`)
  assert.equal(r.status, 200)
  assert.equal(r.url, `${srv.http}/redirect/0`)
  assert.equal(client.stats().redirectsFollowed >= 2, true)
})

test('errors: bad input is a TypeError or an InvalidRequestError, before any I/O', async () => {
  await reset(srv)
  await assert.rejects(client.get('not a url'), (e) => e instanceof wirecore.InvalidRequestError && e.code === 'invalid_url')
  await assert.rejects(client.get('ftp://x/'), (e) => e.code === 'invalid_url' && /ftp/.test(e.message))
  await assert.rejects(
    client.get(`${srv.http}/`, { headers: { 'x-bad': 'a\nb' } }),
    (e) => e instanceof wirecore.InvalidRequestError && e.code === 'invalid_header',
  )
  await assert.rejects(
    client.request({ url: `${srv.http}/`, method: 'GE T' }),
    (e) => e instanceof wirecore.InvalidRequestError,
  )
  await assert.rejects(client.get(42), TypeError)
  await assert.rejects(client.get(`${srv.http}/`, { bogus: 1 }), (e) => e instanceof TypeError && /bogus/.test(e.message))
  await assert.rejects(client.post(`${srv.http}/`, { body: 12 }), TypeError)
  await assert.rejects(client.get(`${srv.http}/`, { timeoutMs: -1 }), RangeError)
  await assert.rejects(client.get(`${srv.http}/`, { signal: 'x' }), TypeError)
  await assert.rejects(client.get(`${srv.http}/`, { headers: 'x' }), TypeError)
  assert.equal((await counters(srv)).connections_accepted, 0)
})

test('timeouts out of range are refused before any I/O, naming the option; huge ones never hang or abort', async () => {
  await reset(srv)
  assert.equal(wirecore.MAX_TIMEOUT_MS, 365 * 24 * 3600 * 1000)
  // 0 too: no language takes a zero timeout (wirecore::RequestOptions); leave it out for the config's.
  const bad = [0, -0, Number.MAX_VALUE, Infinity, -Infinity, NaN, -1, wirecore.MAX_TIMEOUT_MS + 1, 1e300]
  for (const k of ['timeoutMs', 'connectTimeoutMs', 'readTimeoutMs', 'poolTimeoutMs']) {
    for (const v of bad) {
      await assert.rejects(
        client.get(`${srv.http}/json`, { [k]: v }),
        (e) => e instanceof RangeError && e.message.includes(k) && e.message.includes(String(wirecore.MAX_TIMEOUT_MS)),
        `${k}: ${v}`,
      )
    }
    await assert.rejects(client.get(`${srv.http}/json`, { [k]: '100' }), (e) => e instanceof TypeError && e.message.includes(k))
    await assert.rejects(client.get(`${srv.http}/json`, { [k]: 10n }), (e) => e instanceof TypeError && e.message.includes(k))
  }
  await assert.rejects(
    client.fetch(`${srv.http}/json`, { timeoutMs: Number.MAX_VALUE }),
    (e) => e instanceof TypeError && e.message.includes('timeoutMs') && e.cause instanceof RangeError,
  )
  assert.equal((await counters(srv)).requests, 0, 'no request reached the server')
  // The bound itself is a valid timeout (the deadline is computed without overflow).
  const r = await client.get(`${srv.http}/json`, {
    timeoutMs: wirecore.MAX_TIMEOUT_MS,
    connectTimeoutMs: wirecore.MAX_TIMEOUT_MS,
    readTimeoutMs: wirecore.MAX_TIMEOUT_MS,
    poolTimeoutMs: wirecore.MAX_TIMEOUT_MS,
  })
  assert.equal((await r.json()).n, 42)
  for (const v of [Number.MAX_VALUE, Infinity, NaN]) {
    const c = new Client()
    if (Number.isNaN(v)) await assert.rejects(c.close({ timeoutMs: v }), TypeError)
    else await c.close({ timeoutMs: v })
  }
})

test('errors: network failures map to their classes', async () => {
  const refused = 'http://127.0.0.1:1/'
  await assert.rejects(client.get(refused), (e) => e instanceof wirecore.ConnectError && e.code === 'connect' && e.isConnect)
  await assert.rejects(
    client.get(`${srv.bad_tls}/json`),
    (e) => e instanceof wirecore.TlsError && e.code === 'tls',
  )
  const c = new Client({ timeouts: { connectMs: 200 } })
  await assert.rejects(
    c.get(`http://${srv.blackhole}/`),
    (e) => e instanceof wirecore.TimeoutError && e.code === 'timeout.connect' && e.isTimeout && e.isConnect,
  )
  await assert.rejects(client.get(`${srv.http}/reset`).then((r) => r.text()), (e) => e instanceof wirecore.TransportError)
  await c.close()
})

test('errors: every core code maps to a WirecoreError subclass', () => {
  const codes = wirecore.errorCodes()
  assert.ok(codes.length >= 20)
  for (const code of codes) {
    const Class = wirecore.errorClasses[code]
    assert.ok(Class, `no class for ${code}`)
    assert.ok(Class.prototype instanceof wirecore.WirecoreError, `${code} maps to a subclass`)
    const e = wirecore.errorFor(code, 'm')
    assert.ok(e instanceof Class)
    assert.ok(e instanceof Error)
    assert.equal(e.code, code)
    assert.equal(e.name, Class.name)
  }
  assert.deepEqual(Object.keys(wirecore.errorClasses).sort(), [...codes].sort())
  assert.equal(wirecore.errorFor('from_the_future', 'm').constructor, wirecore.WirecoreError)
})

test('timeoutMs is the total deadline of this request', async () => {
  const t0 = Date.now()
  await assert.rejects(
    client.get(`${srv.http}/delay/3000`, { timeoutMs: 150 }),
    (e) => e instanceof wirecore.TimeoutError && e.code === 'timeout.total',
  )
  assert.ok(Date.now() - t0 < 2900, 'well before the 3 s reply')
  await assert.rejects(
    client.get(`${srv.http}/drip?bytes=1000000&chunks=10&delay_ms=200`, { timeoutMs: 300 }).then(async (r) => {
      for await (const _ of r) {
        // reading
      }
    }),
    (e) => e.code === 'timeout.total',
  )
})

test('stats, prometheus and diagnostics', async () => {
  const c = new Client()
  for (let i = 0; i < 3; i++) await (await c.get(`${srv.http}/bytes/100`)).arrayBuffer()
  await c.get(`${srv.http}/status/503`)
  await assert.rejects(c.get('http://127.0.0.1:1/'))
  const s = c.stats()
  assert.equal(s.requestsTotal, 5)
  assert.equal(s.requestsInFlight, 0)
  assert.equal(s.responsesByStatusClass['2xx'], 3)
  assert.equal(s.responsesByStatusClass['5xx'], 1)
  assert.equal(s.errorsByCode.connect, 1)
  assert.equal(s.latency.count >= 4, true)
  assert.equal(typeof s.latency.p99Ms, 'number')
  assert.equal(s.pool.reuses >= 3, true)
  assert.equal(typeof s.pool.evictions.closedByPeer, 'number')
  assert.equal(s.origins[srv.http].protocol, 'h1')
  assert.equal(typeof s.dns.hits, 'number')
  const p = c.prometheus()
  assert.match(p, /# TYPE \S+ counter/)
  assert.match(p, /wirecore_requests_total/)
  const d = c.diagnostics()
  assert.equal(d.requestsTotal, 5)
  assert.equal(typeof d.connectionReuseRatio, 'number')
  assert.ok(Array.isArray(d.origins))
  assert.match(c.diagnostics('text'), /requests 5/)
  await c.close()
})

test('close(): drains in-flight requests, then refuses new ones with ClosedError', async () => {
  // A server of its own: clients of other tests, collected meanwhile, close their connections too.
  const own = await startServer(['--no-tls'])
  try {
    const c = new Client()
    const slow = c.get(`${own.http}/delay/200`)
    assert.ok(await waitFor(async () => (await counters(own)).requests === 1), 'the request reached the server')
    await c.close({ timeoutMs: 5000 })
    assert.equal((await slow).status, 200)
    await assert.rejects(c.get(`${own.http}/json`), (e) => e instanceof wirecore.ClosedError && e.code === 'closed')
    assert.ok(await waitFor(() => c.stats().pool.connections === 0), 'the client closed its idle connection')
    assert.ok(await waitFor(async () => (await counters(own)).connections_closed === 1), 'the server saw the idle connection close')
  } finally {
    own.stop()
  }
})

test('scripted replies through the control API', async () => {
  await control(srv, 'POST', '/_control/script', { path: '/s/x', replies: [{ status: 418, body: 'teapot' }] })
  const r = await client.get(`${srv.http}/s/x`)
  assert.equal(r.status, 418)
  assert.equal(r.ok, false)
  assert.equal(await r.text(), 'teapot')
})

test('idempotent: true lets the engine retry a POST after a reset; rateLimitKey reaches the limiter', async () => {
  const c = new Client({ retry: { enabled: true, maxAttempts: 2, backoffBaseMs: 1, backoffMaxMs: 5 } })
  const script = () => control(srv, 'POST', '/_control/script', { path: '/s/post', replies: [{ action: 'reset' }, { status: 200, body: 'ok' }] })
  await reset(srv)
  await script()
  const r = await c.post(`${srv.http}/s/post`, { body: 'x', idempotent: true })
  assert.equal(await r.text(), 'ok')
  assert.ok(c.stats().resilience.attempts >= 2)
  await reset(srv)
  await script()
  await assert.rejects(c.post(`${srv.http}/s/post`, { body: 'x', idempotent: false }), wirecore.TransportError)
  await assert.rejects(c.post(`${srv.http}/s/post`, { idempotent: 'yes' }), TypeError)
  await c.close()

  const limited = new Client({ rateLimit: { enabled: true, scope: 'key', requests: 1, perMs: 60_000, burst: 1, mode: 'fail' } })
  assert.equal((await limited.get(`${srv.http}/bytes/1`, { rateLimitKey: 'a' })).status, 200)
  await assert.rejects(limited.get(`${srv.http}/bytes/1`, { rateLimitKey: 'a' }), (e) => e instanceof wirecore.RejectedError && e.code === 'rate_limited')
  assert.equal((await limited.get(`${srv.http}/bytes/1`, { rateLimitKey: 'b' })).status, 200)
  await limited.close()
})

test('cache: the mode option, fetch(url, { cache }) and response.cacheStatus', async () => {
  const c = new Client({ cache: { enabled: true } })
  const url = `${srv.http}/cache/node?cache_control=max-age=0&etag=v1`
  const only = await c.get(url, { cache: 'only-if-cached' })
  assert.deepEqual([only.status, only.cacheStatus, (await only.buffer()).length], [504, 'miss', 0])
  const status = async (opts) => {
    const r = await c.get(url, opts)
    await r.buffer()
    return r.cacheStatus
  }
  assert.equal(await status({}), 'miss')
  assert.equal(await status({ cache: 'force-cache' }), 'stale')
  assert.equal(await status({ cache: 'no-cache' }), 'revalidated')
  assert.equal(await status({ cache: 'no-store' }), null)
  // fetch maps its cache option onto the same modes (a RequestInit key and a Request's own).
  assert.equal((await c.fetch(url, { cache: 'only-if-cached' })).status, 200)
  const viaRequest = await c.fetch(new Request(`${srv.http}/cache/node-req?cache_control=max-age=60`, { cache: 'no-store' }))
  assert.equal((await viaRequest.json()).served, 1)
  assert.equal((await c.fetch(`${srv.http}/cache/node-miss`, { cache: 'only-if-cached' })).status, 504)
  assert.equal(c.stats().cache.staleServed, 2)
  await assert.rejects(c.get(url, { cache: 'sometimes' }), (e) => {
    assert.ok(e instanceof wirecore.InvalidRequestError, String(e))
    assert.match(e.message, /request option cache must be one of default, no-store/)
    return true
  })
  await assert.rejects(c.get(url, { cache: 1 }), TypeError)
  await assert.rejects(c.fetch(url, { cache: 'sometimes' }), TypeError)
  assert.equal((await client.get(`${srv.http}/json`)).cacheStatus, null)
  await c.close()
})

test('balanceKey: checked by the engine before any I/O; one key keeps one endpoint', async () => {
  await reset(srv)
  const bad = (balanceKey) => client.get(`${srv.http}/headers`, { balanceKey })
  await assert.rejects(bad(''), (e) => e instanceof wirecore.InvalidRequestError && /balance_key must not be empty/.test(e.message))
  await assert.rejects(bad('b'.repeat(1025)), (e) => e instanceof wirecore.InvalidRequestError && /balance_key must be at most 1024 bytes, got 1025/.test(e.message))
  await assert.rejects(bad(7), TypeError)
  assert.equal((await control(srv, 'GET', '/_control/counters')).connections_accepted, 0)
  const endpoints = [srv.http, srv.http2, srv.http3].map((url) => ({ url }))
  const c = new Client({ services: { svc: { endpoints, strategy: 'consistent_hash', hash: { header: 'x-user' } } } })
  for (let i = 0; i < 8; i++) {
    const r = await c.get('http://svc/json', { headers: { 'x-user': `u${i}` }, balanceKey: 'alice' })
    assert.equal(r.status, 200)
    await r.dump()
  }
  assert.equal(c.stats().pool.connects, 1)
  await c.close()
})

test('priority: sent as the RFC 9218 header; urgent requests overtake queued ones', async () => {
  const h = async (opts) => (await (await client.get(`${srv.http}/headers`, opts)).json()).headers.priority
  assert.equal(await h({ priority: 0 }), 'u=0')
  assert.equal(await h({ priority: 'high' }), 'u=1')
  assert.equal(await h({ priority: 'low' }), 'u=5')
  assert.equal(await h({}), undefined)
  // The engine's rule: an explicit priority replaces the caller's header, which otherwise goes unchanged.
  assert.equal(await h({ priority: 7, headers: { priority: 'u=2, i' } }), 'u=7')
  assert.equal(await h({ headers: { priority: 'u=2, i' } }), 'u=2, i')
  // The engine's forms, the same in every language.
  assert.equal(await h({ priority: 'highest' }), 'u=0')
  assert.equal(await h({ priority: 'lowest' }), 'u=7')
  assert.equal(await h({ priority: '2' }), 'u=2')
  assert.equal(await h({ priority: 'u=6, i' }), 'u=6, i')
  for (const bad of [8, 'urgent', 1.5]) {
    await assert.rejects(client.get(`${srv.http}/headers`, { priority: bad }), (e) => {
      assert.ok(e instanceof wirecore.InvalidRequestError, String(e))
      assert.equal(e.code, 'invalid_request')
      assert.match(e.message, /request option priority/)
      return true
    })
  }
  await assert.rejects(client.get(`${srv.http}/headers`, { priority: {} }), TypeError)
  const viaFetch = await (await wirecore.fetch(`${srv.http}/headers`, { priority: 'low' })).json()
  assert.equal(viaFetch.headers.priority, 'u=5')

  const c = new Client({ pool: { maxConnectionsPerHost: 1 } })
  const order = []
  const send = (name, path, priority) =>
    c.get(`${srv.http}${path}`, priority === undefined ? {} : { priority }).then(async (r) => {
      await r.arrayBuffer()
      order.push(name)
    })
  const queued = (n) => waitFor(async () => c.stats().pool.pending === n)
  // Arrivals, not requests in flight: the server still sleeps on requests other tests gave up on.
  const seen = (await counters(srv)).requests
  const all = [send('busy', '/delay/300')]
  assert.ok(await waitFor(async () => (await counters(srv)).requests > seen), 'busy reached the server')
  for (let i = 0; i < 3; i++) {
    all.push(send(`low-${i}`, '/delay/5', 'low'))
    assert.ok(await queued(i + 1))
  }
  all.push(send('default', '/delay/5'))
  assert.ok(await queued(4))
  all.push(send('urgent', '/delay/5', 0))
  assert.ok(await queued(5))
  await Promise.all(all)
  assert.deepEqual(order, ['busy', 'urgent', 'default', 'low-0', 'low-1', 'low-2'])
  await c.close()
})

test('connectTimeoutMs / readTimeoutMs / poolTimeoutMs override the config per request', async () => {
  const c = new Client({
    timeouts: { readIdleMs: 10_000, poolAcquireMs: 10_000, connectMs: 10_000 },
    pool: { maxConnectionsPerHost: 1 },
    retry: { enabled: false },
  })
  let t = Date.now()
  await assert.rejects(c.get(`${srv.http}/delay/2000`, { readTimeoutMs: 100 }), (e) => e.code === 'timeout.read')
  // The error codes prove the overrides; the bounds (far below the config's 10 s, far above the
  // 100 ms overrides for a loaded machine) only catch a stall.
  assert.ok(Date.now() - t < 5000, `read override took ${Date.now() - t} ms`)
  const seen = (await counters(srv)).requests
  const busy = c.get(`${srv.http}/delay/500`)
  assert.ok(await waitFor(async () => (await counters(srv)).requests > seen), 'busy reached the server')
  t = Date.now()
  await assert.rejects(c.get(`${srv.http}/bytes/1`, { poolTimeoutMs: 50 }), (e) => e.code === 'timeout.pool')
  assert.ok(Date.now() - t < 5000, `pool override took ${Date.now() - t} ms`)
  await (await busy).arrayBuffer()
  t = Date.now()
  await assert.rejects(c.get(`http://${srv.blackhole}/`, { connectTimeoutMs: 100 }), (e) => e.code === 'timeout.connect')
  assert.ok(Date.now() - t < 5000, `connect override took ${Date.now() - t} ms`)
  assert.equal((await c.get(`${srv.http}/delay/300`)).status, 200)
  await assert.rejects(c.get(`${srv.http}/`, { readTimeoutMs: 0 }), RangeError)
  await c.close()
})
