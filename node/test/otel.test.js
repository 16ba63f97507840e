'use strict'
// OpenTelemetry: the traceparent/tracestate options (sent unchanged with otel off, the span's
// parent with it on) and spans exported to the test server's OTLP/HTTP receiver.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startServer, control, counters, reset } = require('./helpers.js')
const { Client, InvalidRequestError } = require('wirecore')

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
