'use strict'
// FormData bodies (client.request and fetch): multipart/form-data with a generated boundary,
// checked by parsing what the test server received.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startServer } = require('./helpers.js')
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

function form() {
  const fd = new FormData()
  fd.append('name', 'wirecore')
  fd.append('multi', 'a')
  fd.append('multi', 'b')
  fd.append('file', new Blob([Buffer.from('file bytes\r\n--not a boundary\r\n')], { type: 'text/plain' }), 'a.txt')
  return fd
}

/** Parses the body /echo received with the content type it received. */
async function received(doc) {
  const ct = doc.headers['content-type']
  assert.match(ct, /^multipart\/form-data; boundary=\S+$/)
  return new Response(doc.body, { headers: { 'content-type': ct } }).formData()
}

for (const via of ['request', 'fetch']) {
  test(`a FormData body arrives as multipart/form-data (${via})`, async () => {
    const url = `${srv.http}/echo`
    const doc =
      via === 'request'
        ? await (await client.post(url, { body: form() })).json()
        : await (await client.fetch(url, { method: 'POST', body: form() })).json()
    const got = await received(doc)
    assert.equal(got.get('name'), 'wirecore')
    assert.deepEqual(got.getAll('multi'), ['a', 'b'])
    const file = got.get('file')
    assert.equal(file.name, 'a.txt')
    assert.equal(file.type, 'text/plain')
    assert.equal(await file.text(), 'file bytes\r\n--not a boundary\r\n')
  })
}

test("a caller's content-type is kept", async () => {
  const fd = new FormData()
  fd.append('a', '1')
  const doc = await (await client.post(`${srv.http}/echo`, { body: fd, headers: { 'content-type': 'application/x-custom' } })).json()
  assert.equal(doc.headers['content-type'], 'application/x-custom')
  assert.match(doc.body, /name="a"/)
})

test('base_url joins relative URLs', async () => {
  const c = new wirecore.Client({ baseUrl: `${srv.http}/` })
  try {
    const r = await c.get('/echo?x=1')
    assert.equal(r.url, `${srv.http}/echo?x=1`)
    assert.equal((await r.json()).query, 'x=1')
  } finally {
    await c.close()
  }
})
