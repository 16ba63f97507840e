'use strict'
// Server-Sent Events through the engine's parser: res.events() across reconnections
// (Last-Event-ID, the server's retry:), a whole body, breaking out, abort.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startServer, counters, reset, control, waitFor } = require('./helpers.js')
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

test('events() reads a GET stream across reconnections with Last-Event-ID', async () => {
  await reset(srv)
  const r = await client.get(`${srv.http}/sse?events=2&total=5&retry=10&cut=1`)
  assert.equal(r.headers.get('content-type'), 'text/event-stream')
  const got = []
  for await (const ev of r.events()) got.push(ev)
  assert.deepEqual(
    got.map((e) => [e.event, e.id, JSON.parse(e.data)]),
    [
      ['message', '0', { n: 0 }],
      ['message', '1', { n: 1 }],
      ['message', '2', { n: 2, last_event_id: '1' }],
      ['message', '3', { n: 3, last_event_id: '1' }],
      ['message', '4', { n: 4, last_event_id: '3' }],
    ],
  )
  assert.equal((await counters(srv)).requests, 4)
  assert.equal(r.bodyUsed, true)
  await assert.rejects(r.text(), TypeError)
})

test('events() of a body read whole, and of a scripted stream with every line end', async () => {
  await control(srv, 'POST', '/_control/script', {
    path: '/s/ev',
    replies: [{ status: 200, headers: { 'content-type': 'text/plain' }, body: '\ufeffdata: a\r\ndata: b\r\r: c\nevent: x\ndata\n\n' }],
  })
  const r = await client.get(`${srv.http}/s/ev`)
  const got = []
  for await (const ev of r.events()) got.push(ev)
  assert.deepEqual(
    got.map((e) => [e.event, e.data, e.id]),
    [
      ['message', 'a\nb', ''],
      ['x', '', ''],
    ],
  )
})

test('breaking out of the loop closes the stream; abort rejects a waiting read', async () => {
  await reset(srv)
  const r = await client.get(`${srv.http}/sse?events=3&delay_ms=20`)
  for await (const ev of r.events()) {
    assert.equal(ev.id, '0')
    break
  }
  assert.ok(await waitFor(async () => (await counters(srv)).requests_cancelled === 1))
  const ac = new AbortController()
  const slow = await client.get(`${srv.http}/sse?events=1&delay_ms=60000`, { signal: ac.signal })
  const it = slow.events()
  const first = it.next()
  ac.abort()
  await assert.rejects(first, (e) => e.name === 'AbortError')
})
