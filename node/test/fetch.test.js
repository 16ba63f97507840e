'use strict'
// wirecore.fetch: the WHATWG signature and a standard Response, over the engine.
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

test('fetch returns a standard Response', async () => {
  const r = await wirecore.fetch(`${srv.http}/json`)
  assert.ok(r instanceof Response)
  assert.equal(r.status, 200)
  assert.equal(r.ok, true)
  assert.equal(r.url, `${srv.http}/json`)
  assert.equal(r.headers.get('content-type'), 'application/json')
  assert.equal((await r.json()).n, 42)
  const big = await client.fetch(`${srv.https}/bytes/300000`)
  assert.equal((await big.arrayBuffer()).byteLength, 300000)
  const none = await client.fetch(`${srv.http}/status/204`)
  assert.equal(none.status, 204)
  assert.equal(none.body, null)
})

test('fetch takes RequestInit and Request objects', async () => {
  const r = await client.fetch(`${srv.http}/echo`, {
    method: 'POST',
    headers: { 'x-a': '1' },
    body: new Blob(['blob body']),
    mode: 'cors',
    credentials: 'omit',
  })
  const j = await r.json()
  assert.equal(j.method, 'POST')
  assert.equal(j.body, 'blob body')
  assert.equal(j.headers['x-a'], '1')
  const req = new Request(`${srv.http}/echo`, { method: 'PUT', body: 'from a Request', headers: { 'x-b': '2' } })
  const k = await (await client.fetch(req)).json()
  assert.equal(k.method, 'PUT')
  assert.equal(k.body, 'from a Request')
  assert.equal(k.headers['x-b'], '2')
})

test('fetch errors follow the spec: TypeError with the WirecoreError as cause; abort rejects with the reason', async () => {
  await assert.rejects(client.fetch('http://127.0.0.1:1/'), (e) => {
    assert.equal(e.constructor, TypeError)
    assert.equal(e.message, 'fetch failed')
    assert.ok(e.cause instanceof wirecore.ConnectError)
    return true
  })
  await assert.rejects(client.fetch('not a url'), (e) => e instanceof TypeError && e.cause?.code === 'invalid_url')
  await assert.rejects(client.fetch(`${srv.http}/json`, { redirect: 'sideways' }), (e) => {
    assert.equal(e.constructor, TypeError)
    assert.match(e.message, /redirect must be "follow", "manual" or "error"/)
    return true
  })
  await reset(srv)
  const ac = new AbortController()
  const p = client.fetch(`${srv.http}/hang`, { signal: ac.signal })
  assert.ok(await waitFor(async () => (await counters(srv)).requests_in_flight === 1))
  ac.abort()
  await assert.rejects(p, (e) => e.name === 'AbortError' && e instanceof DOMException)
  assert.ok(await waitFor(async () => (await counters(srv)).requests_cancelled === 1))
})

test("fetch's redirect option: follow, manual (the 3xx itself), error (TypeError, cause RedirectError)", async () => {
  const chain = `${srv.http}/redirect/2`
  const followed = await client.fetch(chain, { redirect: 'follow' })
  assert.equal(followed.status, 200)
  assert.equal(followed.url, `${srv.http}/redirect/0`)
  const manual = await client.fetch(chain, { redirect: 'manual' })
  assert.equal(manual.status, 302)
  assert.equal(manual.headers.get('location'), '/redirect/1')
  assert.equal(manual.url, chain)
  await manual.arrayBuffer()
  await assert.rejects(client.fetch(chain, { redirect: 'error' }), (e) => {
    assert.equal(e.constructor, TypeError)
    assert.equal(e.message, 'fetch failed')
    assert.ok(e.cause instanceof wirecore.RedirectError)
    assert.equal(e.cause.code, 'too_many_redirects')
    return true
  })
  const fromRequest = await client.fetch(new Request(chain, { redirect: 'manual' }))
  assert.equal(fromRequest.status, 302)
  await fromRequest.arrayBuffer()
})
