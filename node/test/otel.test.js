'use strict'
// OpenTelemetry: the traceparent/tracestate options (sent unchanged with otel off, the span's
// parent with it on) and spans exported to the test server's OTLP/HTTP receiver.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { startServer, control, counters, reset } = require('./helpers.js')
const { isMainThread } = require('node:worker_threads')
const { Client, ConfigError, ConnectError, InvalidRequestError } = require('wirecore')
// The caller's context: @opentelemetry/api with the AsyncLocalStorage context manager, as an
// application using the OpenTelemetry SDK has it (test-packed.sh installs both beside wirecore).
const otel = require('@opentelemetry/api')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')

otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'
const TP = `00-${TRACE}-${PARENT}-01`

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

async function spans() {
  const out = []
  for (const e of await control(srv, 'GET', '/_control/otlp')) {
    if (e.path !== '/v1/traces') continue
    for (const rs of e.body.resourceSpans) for (const ss of rs.scopeSpans) out.push(...ss.spans)
  }
  return out
}

test('traceparent and tracestate go out unchanged with otel off', async () => {
  const c = new Client()
  const h = (await (await c.get(`${srv.http}/echo`, { traceparent: TP, tracestate: 'congo=t61rcWkgMzE' })).json()).headers
  assert.equal(h.traceparent, TP)
  assert.equal(h.tracestate, 'congo=t61rcWkgMzE')
  assert.equal((await (await c.get(`${srv.http}/echo`)).json()).headers.traceparent, undefined)
  await c.close()
})

test('a bad trace context rejects with an InvalidRequestError before any I/O', async () => {
  await reset(srv)
  const c = new Client()
  await assert.rejects(c.get(`${srv.http}/echo`, { traceparent: '00-abc' }), (e) => e instanceof InvalidRequestError && /traceparent must be a W3C traceparent/.test(e.message))
  await assert.rejects(c.get(`${srv.http}/echo`, { tracestate: 'a=1' }), (e) => e instanceof InvalidRequestError && /tracestate needs a traceparent/.test(e.message))
  await assert.rejects(c.get(`${srv.http}/echo`, { traceparent: 7 }), TypeError)
  assert.equal((await counters(srv)).requests, 0)
  await c.close()
})

test('with otel on, the span is a child of the traceparent and is exported at close', async () => {
  await reset(srv)
  const c = new Client({ otel: { enabled: true, endpoint: srv.http, exportIntervalMs: 600000, serviceName: 'node-test' } })
  const sent = (await (await c.get(`${srv.http}/echo`, { traceparent: TP })).json()).headers.traceparent
  assert.ok(sent.startsWith(`00-${TRACE}-`) && !sent.includes(PARENT), sent)
  await c.close()
  const got = await spans()
  assert.equal(got.length, 1)
  assert.deepEqual([got[0].traceId, got[0].parentSpanId, got[0].spanId, got[0].name], [TRACE, PARENT, sent.split('-')[2], 'GET'])
})

function traced(extra = {}) {
  return new Client({ otel: { enabled: true, endpoint: srv.http, exportIntervalMs: 600000, ...extra } })
}

/** Runs `fn` with a sampled parent span (TRACE, PARENT) active in @opentelemetry/api's context. */
function inParentSpan(fn) {
  const parent = otel.trace.wrapSpanContext({ traceId: TRACE, spanId: PARENT, traceFlags: otel.TraceFlags.SAMPLED })
  return otel.context.with(otel.trace.setSpan(otel.context.active(), parent), fn)
}

async function sentTraceparent(c) {
  return (await (await c.get(`${srv.http}/echo`)).json()).headers.traceparent
}

test('the active @opentelemetry/api span is the parent, across awaits; outside it there is none', async () => {
  await reset(srv)
  const off = new Client()
  // Tracing off: the caller's context goes out unchanged.
  const inside = await inParentSpan(async () => {
    await new Promise((resolve) => setImmediate(resolve))
    return sentTraceparent(off)
  })
  assert.equal(inside, TP)
  assert.equal(await sentTraceparent(off), undefined)
  await off.close()
  // Tracing on: the request's span is a child of the active one.
  const c = traced()
  const sent = await inParentSpan(() => sentTraceparent(c))
  assert.ok(sent.startsWith(`00-${TRACE}-`) && !sent.includes(PARENT), sent)
  const root = await sentTraceparent(c)
  assert.ok(!root.includes(TRACE), root)
  // An explicit option wins over the context.
  const other = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const explicit = await inParentSpan(async () => (await (await c.get(`${srv.http}/echo`, { traceparent: other })).json()).headers.traceparent)
  assert.ok(explicit.startsWith('00-0af7651916cd43dd8448eb211c80319c-'), explicit)
  await c.flushTelemetry()
  const got = await spans()
  assert.equal(got.length, 3)
  const child = got.find((s) => s.spanId === sent.split('-')[2])
  assert.deepEqual([child.traceId, child.parentSpanId], [TRACE, PARENT])
  assert.equal(got.find((s) => s.spanId === root.split('-')[2]).parentSpanId, undefined)
  await c.close()
})

test('flushTelemetry exports the spans of every request; stats count them', async () => {
  await reset(srv)
  const c = traced()
  for (let i = 0; i < 4; i++) await (await c.get(`${srv.http}/bytes/10`)).arrayBuffer()
  assert.deepEqual(c.stats().otel, { exported: 0, dropped: 0 })
  await c.flushTelemetry()
  assert.equal((await spans()).length, 4)
  assert.deepEqual(c.stats().otel, { exported: 4, dropped: 0 })
  await c.close()
})

test('close with no time left still exports the last spans', async () => {
  await reset(srv)
  const c = traced()
  for (let i = 0; i < 2; i++) await (await c.get(`${srv.http}/bytes/10`)).arrayBuffer()
  await c.close({ timeoutMs: 0 })
  assert.equal((await spans()).length, 2)
})

test('spans a collector does not take are counted dropped', async () => {
  await reset(srv)
  const free = net.createServer()
  await new Promise((resolve) => free.listen(0, '127.0.0.1', resolve))
  const port = free.address().port
  await new Promise((resolve) => free.close(resolve))
  // Nobody listens at the endpoint any more: every export is refused.
  const c = new Client({ otel: { enabled: true, endpoint: `http://127.0.0.1:${port}`, exportIntervalMs: 600000 } })
  for (let i = 0; i < 3; i++) await (await c.get(`${srv.http}/status/204`)).arrayBuffer()
  await c.flushTelemetry()
  assert.deepEqual(c.stats().otel, { exported: 0, dropped: 3 })
  assert.ok(c.prometheus().includes('wirecore_otel_spans_total{result="dropped"} 3'))
  await c.close()
})

test('flushTelemetry without otel resolves at once', async () => {
  const c = new Client()
  await c.flushTelemetry()
  assert.deepEqual(c.stats().otel, { exported: 0, dropped: 0 })
  await c.close()
})

test('onSpan: each span on the JS thread, a child of the active context, error.type on failure; close hands over the queue', async () => {
  const c = new Client({ otel: { enabled: true } })
  const got = []
  let onMain = true
  c.onSpan((s) => {
    onMain &&= isMainThread
    got.push(s)
  })
  const sent = await inParentSpan(() => sentTraceparent(c))
  const refused = `http://127.0.0.1:9/x`
  await assert.rejects(c.get(refused), ConnectError)
  await c.close()
  assert.equal(got.length, 2, 'close resolved after the spans were handed over')
  assert.ok(onMain, 'called on the JS thread')
  const [ok, failed] = got
  assert.equal(sent, `00-${TRACE}-${ok.spanId}-01`)
  assert.deepEqual([ok.traceId, ok.parentSpanId, ok.name, ok.kind, ok.status], [TRACE, PARENT, 'GET', 'client', 'unset'])
  assert.equal(typeof ok.startUnixNanos, 'bigint')
  assert.ok(ok.endUnixNanos >= ok.startUnixNanos && ok.startUnixNanos > 1_700_000_000n * 1_000_000_000n)
  const a = ok.attributes
  assert.deepEqual(
    [a['http.request.method'], a['server.address'], a['server.port'], a['http.response.status_code'], a['error.type']],
    ['GET', '127.0.0.1', Number(new URL(srv.http).port), 200, undefined],
  )
  assert.equal(failed.parentSpanId, undefined)
  assert.deepEqual([failed.status, failed.attributes['error.type'], failed.attributes['url.full']], ['error', 'connect', refused])
  assert.deepEqual(c.stats().otel, { exported: 2, dropped: 0 })
})

test('a slow onSpan callback never holds up the engine: spans beyond otel.callbackQueue are dropped, counted', async () => {
  const c = new Client({ otel: { enabled: true, callbackQueue: 2 } })
  let calls = 0
  c.onSpan(() => {
    calls++
    if (calls > 1) return
    // Holds the JS thread until the engine has finished (and counted) every request's span.
    const until = Date.now() + 10000
    while (Date.now() < until) {
      const o = c.stats().otel
      if (o.exported + o.dropped === 6) break
    }
  })
  const rs = await Promise.all(Array.from({ length: 6 }, () => c.get(`${srv.http}/status/204`)))
  assert.deepEqual(rs.map((r) => r.status), Array(6).fill(204))
  await c.flushTelemetry()
  const o = c.stats().otel
  assert.equal(o.exported + o.dropped, 6)
  // The callback's first batch (1 or 2 spans) plus 2 queued while it ran; the rest dropped.
  assert.ok(o.dropped >= 2, JSON.stringify(o))
  await c.close()
  assert.equal(calls, o.exported)
})

test('onSpan while otel is off throws a ConfigError naming otel.enabled', async () => {
  const c = new Client()
  assert.throws(() => c.onSpan(() => {}), (e) => e instanceof ConfigError && /otel\.enabled/.test(e.message))
  assert.throws(() => c.onSpan(7), TypeError)
  await c.close()
})
