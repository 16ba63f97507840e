'use strict'
// The reproductions from Node, against the test server's two origins ({http}, {https}):
// credentials stay with their origin across redirects, and a redirected PUT keeps its body.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startServer, control, reset } = require('./helpers.js')
const wirecore = require('wirecore')

let srv
let client
before(async () => {
  srv = await startServer()
  client = new wirecore.Client({ defaultHeaders: { authorization: 'Bearer SECRET' }, tls: { caFiles: [srv.ca] } })
})
after(async () => {
  await client?.close()
  srv?.stop()
})

const via = (origin, status, location) => `${origin}/redirect-to?status=${status}&url=${encodeURIComponent(location)}`

/** The request log's entries for `path`, query ignored (header names lower-case). */
async function logged(path) {
  const log = await control(srv, 'GET', '/_control/requests')
  return log.filter((e) => e.path.split('?')[0] === path)
}

for (const [from, to] of [['http', 'https'], ['https', 'http']]) {
  test(`a default Authorization header never reaches another origin after a 302 (${from} → ${to})`, async () => {
    await reset(srv)
    const target = `${srv[to]}/echo`
    const r = await client.get(via(srv[from], 302, target))
    assert.equal(r.status, 200)
    assert.equal(r.url, target)
    const doc = await r.json()
    assert.equal(doc.headers.authorization, undefined, `the other origin received ${doc.headers.authorization}`)
    const [first] = await logged('/redirect-to')
    assert.equal(first.headers.authorization, 'Bearer SECRET', 'the first origin got the header')
    const [second] = await logged('/echo')
    assert.equal(second.tls, to === 'https')
    assert.equal(second.headers.authorization, undefined)
  })
}

test('a same-origin redirect keeps the default Authorization header', async () => {
  const r = await client.get(via(srv.http, 302, '/echo'))
  assert.equal((await r.json()).headers.authorization, 'Bearer SECRET')
})

const BODY = '{"important":"data"}'

for (const headers of [undefined, { 'content-length': String(Buffer.byteLength(BODY)) }]) {
  test(`PUT answered 301 arrives at the target as PUT with its body${headers ? ' (explicit content-length)' : ''}`, async () => {
    // timeoutMs bounds the stall seen before the fix (the body never sent, the server waiting for it).
    const r = await client.put(via(srv.http, 301, '/echo'), { body: BODY, headers, timeoutMs: 10_000 })
    assert.equal(r.status, 200)
    const doc = await r.json()
    assert.equal(doc.path, '/echo')
    assert.equal(doc.method, 'PUT')
    assert.equal(doc.body, BODY)
    assert.equal(doc.headers['content-length'], String(Buffer.byteLength(BODY)))
  })
}

test('per-request redirect policy: manual returns the 3xx, error rejects, maxRedirects overrides the config', async () => {
  const chain = `${srv.http}/redirect/3`
  const manual = await client.get(chain, { redirect: 'manual', maxRedirects: 5 })
  assert.equal(manual.status, 302)
  assert.equal(manual.headers.get('location'), '/redirect/2')
  await assert.rejects(client.get(chain, { redirect: 'error' }), (e) => {
    assert.ok(e instanceof wirecore.RedirectError)
    assert.equal(e.code, 'too_many_redirects')
    assert.match(e.message, /redirect policy is "error"/)
    return true
  })
  await assert.rejects(client.get(chain, { maxRedirects: 2 }), (e) => e.code === 'too_many_redirects')
  assert.equal((await client.get(chain, { redirect: 'follow', maxRedirects: 3 })).status, 200)
  assert.equal((await client.get(chain, { maxRedirects: 0 })).status, 302)
})

test('bad redirect options throw before any I/O, naming the option', async () => {
  const url = `${srv.http}/redirect/1`
  await assert.rejects(client.get(url, { redirect: 'sideways' }), (e) => {
    assert.ok(e instanceof wirecore.InvalidRequestError)
    assert.match(e.message, /redirect must be "follow", "manual" or "error", got "sideways"/)
    return true
  })
  await assert.rejects(client.get(url, { maxRedirects: 1001 }), /max_redirects must be 0 to 1000, got 1001/)
  await assert.rejects(client.get(url, { maxRedirects: -1 }), /max_redirects must be 0 to 1000, got -1/)
  await assert.rejects(client.get(url, { maxRedirects: 1.5 }), TypeError)
  await assert.rejects(client.get(url, { redirect: 3 }), TypeError)
})
