// @ts-check
'use strict'
// The JS half of the addon: Promises, AbortSignal, streams and error classes over the native
// `NativeClient`. Every operation gets an id; the engine answers through one weak threadsafe
// function per environment (`Dispatcher`), so nothing native keeps the event loop alive. While
// an operation is pending, one ref'd timer does, and it is unref'd when the last one settles.

const native = require('./binding.js')
const errors = require('./errors.js')

const { errorFor, fromNative, AbortError } = errors

const kAbort = Symbol('abort')
const pending = new Map()
let lastId = 0

function nextId() {
  do {
    lastId = lastId === 0xffffffff ? 1 : lastId + 1
  } while (pending.has(lastId))
  return lastId
}

// Only ref'd while `pending` is not empty.
const keepAlive = setInterval(() => {}, 0x7fffffff)
keepAlive.unref()

// While a batch's continuations run (their microtasks, up to the check phase), requests they
// start are queued for the engine without waking it; one wake-up takes them all.
let holding = false

function release() {
  holding = false
  dispatcher.release()
}

function onComplete(batch) {
  if (!holding) {
    holding = true
    dispatcher.hold()
    setImmediate(release)
  }
  deliver(batch)
  // A full batch means more are queued: take them after timers and I/O had their turn.
  if (batch.length === maxBatch * STRIDE) setImmediate(takeMore)
}

function takeMore() {
  onComplete(dispatcher.take())
}

// A batch is flat, STRIDE slots per completion: `id, status, headers, body, meta` for a response
// head (body null when streamed), `id, 0, null, null, completion` for anything else.
const STRIDE = 5

function deliver(batch) {
  for (let i = 0; i < batch.length; i += STRIDE) {
    const id = batch[i]
    const op = pending.get(id)
    if (op !== undefined) {
      pending.delete(id)
      const status = batch[i + 1]
      op.complete(status === 0 ? batch[i + 4] : new Head(id, status, batch[i + 2], batch[i + 3], batch[i + 4]))
    }
  }
  if (pending.size === 0) keepAlive.unref()
}

/** A response head; the fields most callers never read are parsed from `meta` on first use. */
class Head {
  constructor(id, status, headers, body, meta) {
    this.id = id
    this.status = status
    this.headers = headers
    this.body = body
    this.streaming = body === null
    this.meta = meta
    this.parsed = null
  }

  /** [version, reused, cacheStatus, timings, url] */
  #parse() {
    if (this.parsed === null) {
      const m = this.meta
      const a = m.indexOf('\n')
      const b = m.indexOf('\n', a + 1)
      const c = m.indexOf('\n', b + 1)
      const d = m.indexOf('\n', c + 1)
      this.parsed = [
        m.slice(0, a),
        m.slice(a + 1, b) === '1',
        m.slice(b + 1, c) || null,
        m.slice(c + 1, d).split(' ').map(Number),
        m.slice(d + 1),
      ]
    }
    return this.parsed
  }

  get version() {
    return this.#parse()[0]
  }

  get reused() {
    return this.#parse()[1]
  }

  get cacheStatus() {
    return this.#parse()[2]
  }

  get timings() {
    return this.#parse()[3]
  }

  get url() {
    return this.#parse()[4]
  }
}

const dispatcher = new native.Dispatcher(onComplete)
const maxBatch = native.maxBatch()

function track(id, op) {
  if (pending.size === 0) keepAlive.ref()
  pending.set(id, op)
}

function untrack(id) {
  if (pending.delete(id) && pending.size === 0) keepAlive.unref()
}

/** One native operation as a Promise of its completion. */
function operation(start) {
  return new Promise((resolve, reject) => {
    const id = nextId()
    track(id, {
      complete(c) {
        if (c.code != null) reject(errorFor(c.code, c.message))
        else resolve(c)
      },
      fail: reject,
    })
    try {
      start(id)
    } catch (e) {
      untrack(id)
      reject(fromNative(e))
    }
  })
}

function abortError(signal) {
  return new AbortError('cancelled', 'the request was aborted', { cause: signal.reason })
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT'])
const REQUEST_KEYS = new Set([
  'method',
  'url',
  'headers',
  'body',
  'json',
  'timeoutMs',
  'signal',
  'priority',
  'idempotent',
  'rateLimitKey',
  'balanceKey',
  'connectTimeoutMs',
  'readTimeoutMs',
  'poolTimeoutMs',
  'redirect',
  'maxRedirects',
  'cache',
  'auth',
  'traceparent',
  'tracestate',
])
const VERSIONS = { 'HTTP/0.9': '0.9', 'HTTP/1.0': '1.0', 'HTTP/1.1': '1.1', 'HTTP/2.0': '2.0', 'HTTP/3.0': '3.0' }

function flatHeaders(headers) {
  if (headers == null) return null
  const out = []
  const add = (name, value) => {
    if (typeof name !== 'string') throw new TypeError('wirecore: header names must be strings')
    if (Array.isArray(value)) {
      for (const v of value) out.push(name, String(v))
    } else if (value !== undefined) {
      out.push(name, String(value))
    }
  }
  if (typeof headers !== 'object') {
    throw new TypeError('wirecore: headers must be an object, an array of [name, value] pairs, a Map or a Headers')
  }
  if (Array.isArray(headers) || typeof headers[Symbol.iterator] === 'function') {
    for (const pair of headers) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new TypeError('wirecore: each header must be a [name, value] pair')
      }
      add(pair[0], pair[1])
    }
  } else {
    for (const name of Object.keys(headers)) add(name, headers[name])
  }
  return out.length === 0 ? null : out
}

/**
 * `Basic base64(username:password)`, the value of an `Authorization` header; the engine encodes
 * it (`wirecore::basic_auth`), as Rust's `RequestBuilder::basic_auth` and C's
 * `wirecore_request_set_basic_auth`. For `fetch`, whose options have no `auth`.
 */
function basicAuth(username, password = '') {
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw new TypeError('wirecore: basicAuth(username, password) takes strings')
  }
  return native.basicAuth(username, password)
}

/** `flat` without its `authorization` headers, plus Basic credentials from `[username, password]`. */
function withBasicAuth(flat, auth) {
  if (!Array.isArray(auth) || auth.length !== 2 || typeof auth[0] !== 'string' || typeof auth[1] !== 'string') {
    throw new TypeError('wirecore: auth must be a [username, password] pair of strings')
  }
  const out = []
  for (let i = 0; flat !== null && i < flat.length; i += 2) {
    if (flat[i].toLowerCase() !== 'authorization') out.push(flat[i], flat[i + 1])
  }
  out.push('authorization', native.basicAuth(auth[0], auth[1]))
  return out
}

function hasHeader(flat, name) {
  if (flat === null) return false
  for (let i = 0; i < flat.length; i += 2) if (flat[i].toLowerCase() === name) return true
  return false
}

function isStream(body) {
  return (
    typeof body === 'object' &&
    body !== null &&
    (typeof body.getReader === 'function' || typeof body[Symbol.asyncIterator] === 'function')
  )
}

/** Chunks of a request-body stream as Uint8Arrays. */
async function* chunksOf(body) {
  if (typeof body.getReader === 'function') {
    const reader = body.getReader()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        yield toBytes(value)
      }
    } finally {
      reader.releaseLock()
    }
  }
  for await (const chunk of body) yield toBytes(chunk)
}

function toBytes(chunk) {
  if (typeof chunk === 'string') return Buffer.from(chunk)
  if (chunk instanceof Uint8Array) return chunk
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk)
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw new TypeError('wirecore: a request body stream must yield strings, Buffers or Uint8Arrays')
}

/** The longest timeout a request takes, in milliseconds: one year (the core's bound on durations). */
const MAX_TIMEOUT_MS = native.maxTimeoutMs()

/**
 * Throws unless `v` is a number of milliseconds above 0, at most MAX_TIMEOUT_MS. Zero is refused
 * as in every language (`wirecore::RequestOptions`): leave the option out for the config's.
 */
function checkTimeout(name, v) {
  if (typeof v !== 'number') throw new TypeError(`wirecore: ${name} must be a number of milliseconds, got ${typeof v}`)
  if (!(v > 0) || !(v <= MAX_TIMEOUT_MS)) {
    throw new RangeError(`wirecore: ${name} must be a number of milliseconds above 0 to ${MAX_TIMEOUT_MS}, got ${v}`)
  }
}

function normalize(input, init) {
  let opts
  if (typeof input === 'string' || input instanceof URL) {
    if (init != null && typeof init !== 'object') throw new TypeError('wirecore: request options must be an object')
    opts = { ...init, url: input }
  } else if (input != null && typeof input === 'object') {
    if (init !== undefined) throw new TypeError('wirecore: pass either request(url, options) or request(options)')
    opts = input
  } else {
    throw new TypeError('wirecore: request needs a URL string, a URL or an options object')
  }
  for (const k of Object.keys(opts)) {
    if (!REQUEST_KEYS.has(k)) throw new TypeError(`wirecore: unknown request option '${k}'`)
  }
  let { url } = opts
  if (url instanceof URL) url = url.href
  if (typeof url !== 'string') throw new TypeError('wirecore: url must be a string or a URL')
  let method = opts.method ?? 'GET'
  if (typeof method !== 'string') throw new TypeError('wirecore: method must be a string')
  const upper = method.toUpperCase()
  if (METHODS.has(upper)) method = upper
  let headers = flatHeaders(opts.headers)
  if (opts.auth !== undefined) headers = withBasicAuth(headers, opts.auth)
  let { body } = opts
  if (opts.json !== undefined) {
    if (body !== undefined) throw new TypeError("wirecore: pass either 'body' or 'json', not both")
    body = JSON.stringify(opts.json)
    if (!hasHeader(headers, 'content-type')) (headers ??= []).push('content-type', 'application/json')
  }
  let stream = null
  if (body == null) {
    body = null
  } else if (typeof body === 'string' || body instanceof Uint8Array) {
    // sent as is
  } else if (body instanceof ArrayBuffer) {
    body = new Uint8Array(body)
  } else if (ArrayBuffer.isView(body)) {
    body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  } else if (body instanceof URLSearchParams) {
    body = body.toString()
    if (!hasHeader(headers, 'content-type')) {
      ;(headers ??= []).push('content-type', 'application/x-www-form-urlencoded;charset=UTF-8')
    }
  } else if (typeof FormData === 'function' && body instanceof FormData) {
    // multipart/form-data as fetch sends it: Node's own encoder (a generated boundary, files
    // streamed from their Blobs), read here as a stream.
    const encoded = new globalThis.Response(body)
    if (!hasHeader(headers, 'content-type')) {
      ;(headers ??= []).push('content-type', encoded.headers.get('content-type'))
    }
    stream = encoded.body
    body = null
  } else if (isStream(body)) {
    stream = body
    body = null
  } else {
    throw new TypeError(
      'wirecore: body must be a string, Buffer, Uint8Array, ArrayBuffer, URLSearchParams, FormData, ReadableStream or async iterable',
    )
  }
  const {
    timeoutMs,
    signal,
    priority,
    idempotent,
    rateLimitKey,
    connectTimeoutMs,
    readTimeoutMs,
    poolTimeoutMs,
    redirect,
    maxRedirects,
    cache,
    balanceKey,
    traceparent,
    tracestate,
  } = opts
  let phases = null
  if (connectTimeoutMs !== undefined || readTimeoutMs !== undefined || poolTimeoutMs !== undefined) {
    for (const [k, v] of Object.entries({ connectTimeoutMs, readTimeoutMs, poolTimeoutMs })) {
      if (v !== undefined) checkTimeout(k, v)
    }
    phases = { connect: connectTimeoutMs, read: readTimeoutMs, pool: poolTimeoutMs }
  }
  if (idempotent !== undefined && typeof idempotent !== 'boolean') {
    throw new TypeError('wirecore: idempotent must be a boolean')
  }
  if (rateLimitKey !== undefined && typeof rateLimitKey !== 'string') {
    throw new TypeError('wirecore: rateLimitKey must be a string')
  }
  if (balanceKey !== undefined && typeof balanceKey !== 'string') {
    throw new TypeError('wirecore: balanceKey must be a string')
  }
  // The engine checks both (W3C rules; tracestate needs a traceparent).
  for (const [k, v] of Object.entries({ traceparent, tracestate })) {
    if (v !== undefined && typeof v !== 'string') throw new TypeError(`wirecore: ${k} must be a string`)
  }
  const trace = traceparent === undefined && tracestate === undefined ? activeTraceContext() : { traceparent, tracestate }
  if (timeoutMs !== undefined) checkTimeout('timeoutMs', timeoutMs)
  if (signal != null && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
    throw new TypeError('wirecore: signal must be an AbortSignal')
  }
  // Only the type is checked here: the engine parses the value (wirecore::Priority::parse), so
  // every language takes the same forms, and it replaces a Priority header in `headers`.
  if (priority !== undefined && typeof priority !== 'string' && typeof priority !== 'number') {
    throw new TypeError('wirecore: priority must be a string or an urgency number 0 (most urgent) to 7')
  }
  // The engine checks the policy name and the hop bound (the same messages in every language).
  if (redirect !== undefined && typeof redirect !== 'string') {
    throw new TypeError("wirecore: redirect must be 'follow', 'manual' or 'error'")
  }
  if (maxRedirects !== undefined && !Number.isSafeInteger(maxRedirects)) {
    throw new TypeError('wirecore: maxRedirects must be an integer')
  }
  // The engine parses the word (wirecore::CacheMode::parse), as in every language.
  if (cache !== undefined && typeof cache !== 'string') {
    throw new TypeError('wirecore: cache must be a string')
  }
  return {
    method,
    url,
    headers,
    body,
    stream,
    timeoutMs: timeoutMs ?? null,
    signal: signal ?? null,
    idempotent: idempotent ?? null,
    rateLimitKey: rateLimitKey ?? null,
    balanceKey: balanceKey ?? null,
    phases,
    priority: priority === undefined ? null : String(priority),
    redirect: redirect ?? null,
    maxRedirects: maxRedirects ?? null,
    cache: cache ?? null,
    traceparent: trace?.traceparent ?? null,
    tracestate: trace?.tracestate ?? null,
  }
}

// `@opentelemetry/api`, looked up on first use; null when it is not installed (an optional
// peer: named through a variable so the type check does not require it).
const OTEL_API = '@opentelemetry/api'
let otelApi
/** The active OpenTelemetry span's context as W3C strings, or null (no API, no active span). */
function activeTraceContext() {
  if (otelApi === undefined) {
    try {
      otelApi = require(OTEL_API)
    } catch {
      otelApi = null
    }
  }
  if (otelApi === null) return null
  const sc = otelApi.trace.getSpanContext(otelApi.context.active())
  if (sc === undefined || !otelApi.isSpanContextValid(sc)) return null
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0')
  const state = sc.traceState?.serialize()
  return { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}`, tracestate: state || undefined }
}

class Timings {
  constructor(t) {
    this.dnsMs = t[0]
    this.connectMs = t[1]
    this.tlsMs = t[2]
    this.ttfbMs = t[3]
    this.totalMs = t[4]
  }
}

/**
 * @param {string} text
 * @returns {[string, string][]}
 */
function splitHeaders(text) {
  /** @type {[string, string][]} */
  const pairs = []
  let start = 0
  while (start < text.length) {
    const a = text.indexOf('\n', start)
    const b = text.indexOf('\n', a + 1)
    pairs.push([text.slice(start, a), text.slice(a + 1, b)])
    start = b + 1
  }
  return pairs
}

function emptyBody() {
  return Buffer.alloc(0)
}

/** A response: status and headers are here; the body is read once, whole or as a stream. */
class Response {
  #native
  #head
  #body
  #streamId
  #signal
  #onAbort
  #headers
  #used = false
  /** @type {ReadableStream<Uint8Array> | null} */
  #stream = null
  /** The signal that aborted the body, once it has: every later read rejects. */
  #aborted = null

  constructor(nativeClient, head, signal, onAbort) {
    this.#native = nativeClient
    this.#head = head
    this.#body = head.body ?? null
    this.#streamId = head.streaming ? head.id : null
    this.#signal = signal
    this.#onAbort = onAbort
    this.status = head.status
    if (this.#streamId !== null) bodies.register(this, { nativeClient, id: head.id }, this)
  }

  get ok() {
    return this.status >= 200 && this.status < 300
  }

  /** `'1.1'` or `'2.0'`, as `node:http` spells it. */
  get httpVersion() {
    return VERSIONS[this.#head.version] ?? this.#head.version
  }

  /** The final URL (after redirects). */
  get url() {
    return this.#head.url
  }

  /** The request went out on a pooled connection. */
  get reused() {
    return this.#head.reused
  }

  /** Where the response came from: 'hit', 'miss', 'stale', 'revalidated'; null when the cache took no part. */
  get cacheStatus() {
    return this.#head.cacheStatus ?? null
  }

  get timings() {
    return new Timings(this.#head.timings)
  }

  /** A WHATWG `Headers` (built on first access). */
  get headers() {
    if (this.#headers === undefined) this.#headers = new Headers(splitHeaders(this.#head.headers))
    return this.#headers
  }

  /** Header name/value pairs in wire order, repeated names kept. */
  rawHeaders() {
    return splitHeaders(this.#head.headers)
  }

  get bodyUsed() {
    return this.#used
  }

  #take() {
    if (this.#used) return Promise.reject(new TypeError('wirecore: the response body was already read'))
    this.#used = true
    return null
  }

  #done() {
    if (this.#signal !== null) {
      this.#signal.removeEventListener('abort', this.#onAbort)
      this.#signal = null
    }
  }

  /** Next chunk of a streaming body, or null at the end. */
  #next() {
    const id = this.#streamId
    if (this.#aborted !== null) return Promise.reject(abortError(this.#aborted))
    if (id === null) {
      const b = this.#body
      this.#body = null
      return Promise.resolve(b === null || b.length === 0 ? null : b)
    }
    if (this.#signal?.aborted) return Promise.reject(abortError(this.#signal))
    const nativeClient = this.#native
    return operation((op) => {
      this.#reading = op
      nativeClient.readBody(id, op)
    }).then(
      (c) => {
        this.#reading = 0
        if (c.body == null) {
          this.#finish()
          return null
        }
        return c.body
      },
      (e) => {
        this.#reading = 0
        this.#finish()
        throw e
      },
    )
  }

  #reading = 0

  /** Drops the engine side of the body; the connection is discarded if it was not read to the end. */
  #finish() {
    if (this.#streamId !== null) {
      bodies.unregister(this)
      this.#native.dropBody(this.#streamId)
      this.#streamId = null
    }
    this.#done()
  }

  /** Called when the request's signal fires after the head arrived. */
  [kAbort](signal) {
    this.#aborted = signal
    if (this.#reading !== 0) {
      const op = pending.get(this.#reading)
      untrack(this.#reading)
      this.#native.cancel(this.#reading)
      this.#reading = 0
      op?.fail(abortError(signal))
    }
    this.#finish()
  }

  /**
   * The body as Server-Sent Events, parsed by the engine: `for await (const ev of res.events())`.
   * A `GET`'s event stream reconnects when it ends or breaks, after the server's `retry:`, with
   * `Last-Event-ID`. Breaking out of the loop closes the stream.
   */
  async *events() {
    if (this.#used) throw new TypeError('wirecore: the response body was already read')
    this.#used = true
    if (this.#aborted !== null) throw abortError(this.#aborted)
    if (this.#streamId === null) {
      const b = this.#body ?? emptyBody()
      this.#body = null
      this.#done()
      yield* native.parseEvents(b)
      return
    }
    const id = this.#streamId
    const nativeClient = this.#native
    try {
      try {
        nativeClient.openEvents(id)
      } catch (e) {
        throw fromNative(e)
      }
      for (;;) {
        if (this.#aborted !== null) throw abortError(this.#aborted)
        const c = await operation((op) => {
          this.#reading = op
          nativeClient.readEvent(id, op)
        })
        this.#reading = 0
        if (c.event == null) return
        yield c.event
      }
    } finally {
      this.#reading = 0
      this.#finish()
    }
  }

  async #all() {
    if (this.#aborted !== null) throw abortError(this.#aborted)
    if (this.#streamId === null) {
      const b = this.#body ?? emptyBody()
      this.#body = null
      this.#done()
      return b
    }
    const parts = []
    let n = 0
    for (;;) {
      const c = await this.#next()
      if (c === null) break
      parts.push(c)
      n += c.length
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n)
  }

  /** The whole body as a Buffer. */
  async buffer() {
    const used = this.#take()
    if (used) return used
    return this.#all()
  }

  /** The whole body as a Uint8Array. */
  bytes() {
    return this.buffer()
  }

  /** The whole body as an ArrayBuffer. */
  async arrayBuffer() {
    const b = await this.buffer()
    return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
      ? b.buffer
      : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)
  }

  /** The whole body as text (UTF-8; invalid sequences become U+FFFD, as in the core). */
  async text() {
    return (await this.buffer()).toString('utf8')
  }

  /** The whole body parsed as JSON; a body that is not JSON is a `BodyError` with code `decode`. */
  async json() {
    const t = await this.text()
    try {
      return JSON.parse(t)
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e)
      throw errorFor('decode', `the response body is not valid JSON: ${why}`, { cause: e })
    }
  }

  /** The body as a web `ReadableStream` of Uint8Array chunks (read once). */
  get body() {
    if (this.#stream === null) {
      if (this.#used) return null
      this.#used = true
      this.#stream = new ReadableStream({
        pull: async (controller) => {
          const c = await this.#next()
          if (c === null) {
            this.#done()
            controller.close()
          } else {
            controller.enqueue(c)
          }
        },
        cancel: () => this.#finish(),
      })
    }
    return this.#stream
  }

  /** `for await (const chunk of response)`: the body as Uint8Array chunks. */
  async *[Symbol.asyncIterator]() {
    const used = this.#take()
    if (used) await used
    let finished = false
    try {
      for (;;) {
        const c = await this.#next()
        if (c === null) {
          finished = true
          this.#done()
          return
        }
        yield c
      }
    } finally {
      if (!finished) this.#finish()
    }
  }

  /** Discards the body (the connection is closed if the body was not complete). */
  async dump() {
    if (!this.#used) {
      this.#used = true
      this.#body = null
      this.#finish()
    }
  }
}

// A streaming response dropped unread releases its engine side when collected.
const bodies = new FinalizationRegistry(({ nativeClient, id }) => nativeClient.dropBody(id))

async function pumpUpload(nativeClient, id, stream) {
  let error = null
  const it = chunksOf(stream)
  try {
    for await (const chunk of it) {
      if (chunk.length === 0) continue
      await operation((op) => nativeClient.writeUpload(id, op, chunk))
    }
  } catch (e) {
    // A write fails when the engine stopped reading (the request ended): not an error of the source.
    if (!(e instanceof errors.WirecoreError)) error = String(e !== null && typeof e === 'object' && 'message' in e ? e.message : e)
  } finally {
    nativeClient.endUpload(id, error)
  }
}

class Client {
  #native
  #spans = false

  /**
   * @param {object} [config] the core's config, camelCase (snake_case also accepted); an unknown
   *   key throws a `ConfigError` naming it.
   */
  constructor(config) {
    if (config != null && (typeof config !== 'object' || Array.isArray(config))) {
      throw new TypeError('wirecore: config must be an object')
    }
    try {
      this.#native = new native.NativeClient(config ?? null, dispatcher)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** The common case (no headers, body or options): no option parsing, one Promise. */
  #plain(method, url) {
    const nativeClient = this.#native
    return new Promise((resolve, reject) => {
      const id = nextId()
      track(id, {
        complete(c) {
          if (c.code != null) reject(errorFor(c.code, c.message))
          else resolve(new Response(nativeClient, c, null, null))
        },
        fail: reject,
      })
      try {
        // The caller's active span is the parent here too (the plain path is the common one).
        const trace = activeTraceContext()
        if (trace === null) nativeClient.request(id, method, url, null, null, null, null, false)
        else {
          nativeClient.request(
            id, method, url, null, null, null, null, false,
            null, null, null, null, null, null, null, null,
            trace.traceparent, trace.tracestate ?? null,
          )
        }
      } catch (e) {
        untrack(id)
        reject(fromNative(e))
      }
    })
  }

  /** Sends a request: `request(url, options)` or `request({ url, ...options })`. */
  request(input, init) {
    if (typeof input === 'string' && init === undefined) return this.#plain('GET', input)
    let r
    try {
      r = normalize(input, init)
    } catch (e) {
      return Promise.reject(e)
    }
    const nativeClient = this.#native
    const { signal } = r
    if (signal === null && r.stream === null) {
      return operation((id) =>
        nativeClient.request(
          id,
          r.method,
          r.url,
          r.headers,
          r.body,
          null,
          r.timeoutMs,
          false,
          r.idempotent,
          r.rateLimitKey,
          r.phases,
          r.priority,
          r.redirect,
          r.maxRedirects,
          r.cache,
          r.balanceKey,
          r.traceparent,
          r.tracestate,
        ),
      ).then((c) => new Response(nativeClient, c, null, null))
    }
    if (signal?.aborted) return Promise.reject(abortError(signal))
    return new Promise((resolve, reject) => {
      const id = nextId()
      let response = null
      const onAbort = () => {
        if (response !== null) {
          response[kAbort](signal)
          return
        }
        untrack(id)
        nativeClient.cancel(id)
        if (r.stream !== null) nativeClient.endUpload(id, 'aborted')
        reject(abortError(signal))
      }
      track(id, {
        complete(c) {
          if (c.code != null) {
            signal?.removeEventListener('abort', onAbort)
            reject(errorFor(c.code, c.message))
            return
          }
          if (signal !== null && c.streaming) {
            response = new Response(nativeClient, c, signal, onAbort)
          } else {
            signal?.removeEventListener('abort', onAbort)
            response = new Response(nativeClient, c, null, null)
          }
          resolve(response)
        },
      })
      try {
        if (r.stream !== null) nativeClient.openUpload(id)
        nativeClient.request(
          id,
          r.method,
          r.url,
          r.headers,
          r.body,
          r.stream === null ? null : id,
          r.timeoutMs,
          signal !== null,
          r.idempotent,
          r.rateLimitKey,
          r.phases,
          r.priority,
          r.redirect,
          r.maxRedirects,
          r.cache,
          r.balanceKey,
          r.traceparent,
          r.tracestate,
        )
      } catch (e) {
        untrack(id)
        if (r.stream !== null) nativeClient.endUpload(id, null)
        reject(fromNative(e))
        return
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (r.stream !== null) pumpUpload(nativeClient, id, r.stream)
    })
  }

  get(url, options) {
    if (options === undefined && typeof url === 'string') return this.#plain('GET', url)
    return this.request(url, { ...options, method: 'GET' })
  }

  head(url, options) {
    if (options === undefined && typeof url === 'string') return this.#plain('HEAD', url)
    return this.request(url, { ...options, method: 'HEAD' })
  }

  post(url, options) {
    if (options === undefined && typeof url === 'string') return this.#plain('POST', url)
    return this.request(url, { ...options, method: 'POST' })
  }

  put(url, options) {
    if (options === undefined && typeof url === 'string') return this.#plain('PUT', url)
    return this.request(url, { ...options, method: 'PUT' })
  }

  patch(url, options) {
    if (options === undefined && typeof url === 'string') return this.#plain('PATCH', url)
    return this.request(url, { ...options, method: 'PATCH' })
  }

  delete(url, options) {
    if (options === undefined && typeof url === 'string') return this.#plain('DELETE', url)
    return this.request(url, { ...options, method: 'DELETE' })
  }

  options(url, options) {
    if (options === undefined && typeof url === 'string') return this.#plain('OPTIONS', url)
    return this.request(url, { ...options, method: 'OPTIONS' })
  }

  /** WHATWG `fetch` through this client; returns a standard `Response`. */
  fetch(input, init) {
    return fetchWith(this, input, init)
  }

  /**
   * Calls `callback` with each request that fails after every retry the policy allowed (an
   * error, or a status `retry.retryOnStatus` lists), on the JS thread; replaces an earlier one.
   * A callback that throws is reported as an uncaught exception.
   * @param {(letter: import('./index').DeadLetter) => void} callback
   */
  onDeadLetter(callback) {
    if (typeof callback !== 'function') throw new TypeError('onDeadLetter needs a function')
    this.#native.onDeadLetter((batch) => {
      for (const letter of batch) {
        try {
          callback(letter)
        } catch (e) {
          queueMicrotask(() => {
            throw e
          })
        }
      }
    })
  }

  /**
   * Calls `callback` with each finished request's span (`otel.enabled`; also exported to
   * `otel.endpoint` when that is set), on the JS thread; replaces an earlier one. Spans wait in
   * a queue of `otel.callbackQueue`; more are dropped (`stats().otel.dropped`), so a slow
   * callback never holds up the engine. `close()` resolves once the queued spans were handed
   * over. A callback that throws is reported as an uncaught exception. Throws a `ConfigError`
   * while `otel.enabled` is false.
   * @param {(span: import('./index').Span) => void} callback
   */
  onSpan(callback) {
    if (typeof callback !== 'function') throw new TypeError('onSpan needs a function')
    try {
      this.#native.onSpan((batch) => {
        for (const span of batch) {
          try {
            callback(span)
          } catch (e) {
            queueMicrotask(() => {
              throw e
            })
          }
        }
      })
    } catch (e) {
      throw fromNative(e)
    }
    this.#spans = true
  }

  /** Every counter of this client, with the core's metric names in camelCase. */
  stats() {
    return this.#native.stats()
  }

  /**
   * The unexpired cookies in the engine's jar (`{ cookies: { enabled: true } }`; empty while it
   * is off): `{ name, value, domain, hostOnly, path, secure, httpOnly, sameSite, expiresMs }`.
   */
  cookies() {
    return this.#native.cookies()
  }

  /** Empties the engine's cookie jar. */
  clearCookies() {
    this.#native.clearCookies()
  }

  /** The stats in Prometheus text format (the core's snake_case metric names). */
  prometheus() {
    return this.#native.prometheus()
  }

  /** A health report; `diagnostics('text')` gives it as lines of text. */
  diagnostics(format) {
    if (format === 'text') return this.#native.diagnosticsText()
    if (format !== undefined) throw new TypeError("wirecore: diagnostics format must be 'text' or omitted")
    return this.#native.diagnostics()
  }

  /**
   * Exports the finished OpenTelemetry spans and the duration metric to `otel.endpoint` now;
   * resolves once the collector answered or the export failed (`stats().otel.dropped`).
   */
  async flushTelemetry() {
    await operation((id) => this.#native.flushTelemetry(id))
  }

  /**
   * Refuses new requests, waits up to `timeoutMs` (default 30 s) for in-flight ones, then closes
   * idle connections.
   */
  async close({ timeoutMs = 30_000 } = {}) {
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new TypeError('wirecore: timeoutMs must be a non-negative number')
    }
    await operation((id) => this.#native.close(id, Math.min(timeoutMs, MAX_TIMEOUT_MS)))
    // The engine handed the last spans over before close completed; their wake-up runs in the
    // same turn of the event loop, before the next check phase.
    if (this.#spans) await new Promise((resolve) => setImmediate(resolve))
  }
}

// fetch(): the WHATWG signature over a Client, returning a standard `Response`.
const FETCH_IGNORED = new Set([
  'credentials',
  'integrity',
  'keepalive',
  'mode',
  'referrer',
  'referrerPolicy',
  'window',
  'duplex',
  'dispatcher',
])
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

async function fetchWith(client, input, init = {}) {
  if (init === null || typeof init !== 'object') throw new TypeError('wirecore: fetch init must be an object')
  let url
  let method = 'GET'
  let headers
  let body
  let signal = null
  const opts = {}
  if (typeof input === 'string' || input instanceof URL) {
    url = String(input)
  } else if (typeof Request === 'function' && input instanceof Request) {
    url = input.url
    method = input.method
    headers = input.headers
    body = input.body ?? undefined
    signal = input.signal
    if (input.redirect !== 'follow') opts.redirect = input.redirect
    if (input.cache !== 'default') opts.cache = input.cache
  } else if (input != null && typeof input.href === 'string') {
    url = input.href
  } else {
    throw new TypeError('wirecore: fetch needs a URL string, a URL or a Request')
  }
  for (const k of Object.keys(init)) {
    const v = init[k]
    if (v === undefined || FETCH_IGNORED.has(k)) continue
    switch (k) {
      case 'method':
        method = v
        break
      case 'headers':
        headers = v
        break
      case 'body':
        body = v ?? undefined
        break
      case 'signal':
        signal = v
        break
      case 'redirect':
        // 'manual' resolves with the 3xx itself (as Node's own fetch does, not an opaque
        // response); 'error' rejects with TypeError('fetch failed'), cause a RedirectError.
        opts.redirect = v
        break
      case 'timeoutMs':
        opts.timeoutMs = v
        break
      case 'cache':
        // The engine's modes are fetch's: only-if-cached without a stored response is a 504.
        opts.cache = v
        break
      case 'priority':
        // fetch's 'high' | 'low' | 'auto' ('auto' leaves the default urgency).
        if (v !== 'auto') opts.priority = v
        break
      default:
        throw new TypeError(`wirecore: unknown fetch option '${k}'`)
    }
  }
  if (typeof Blob === 'function' && body instanceof Blob) body = new Uint8Array(await body.arrayBuffer())
  let r
  try {
    r = await client.request({ ...opts, url, method, headers, body, signal })
  } catch (e) {
    if (e instanceof AbortError) throw signal.reason ?? e
    if (e instanceof errors.InvalidRequestError || e instanceof TypeError || e instanceof RangeError) {
      throw new TypeError(e.message, { cause: e })
    }
    throw new TypeError('fetch failed', { cause: e })
  }
  const nullBody = NULL_BODY_STATUS.has(r.status) || method.toUpperCase() === 'HEAD'
  const out = new globalThis.Response(nullBody ? null : r.body, {
    status: r.status,
    headers: r.rawHeaders(),
  })
  Object.defineProperty(out, 'url', { value: r.url })
  return out
}

let defaultClient = null

/**
 * WHATWG `fetch` over the engine (a shared default Client): returns a standard `Response`.
 * Network failures reject with `TypeError('fetch failed')` whose `cause` is the `WirecoreError`.
 */
function fetch(input, init) {
  defaultClient ??= new Client()
  return fetchWith(defaultClient, input, init)
}

/** Every error code of the core. */
function errorCodes() {
  return native.errorCodes()
}

/**
 * Hands the engine's events (connections opened and closed, retries, breaker state changes,
 * DNS refreshes, redirects, waits for a connection) at `level` and above (`'error'`, `'warn'`,
 * `'info'`, `'debug'`, `'trace'`) to `callback`, one record at a time on the JS thread, for
 * every client of the process; `null` turns it off (the default). At most 4096 records wait;
 * more are dropped. A callback that throws is reported as an uncaught exception.
 * @param {((record: import('./index').LogRecord) => void) | null} callback
 * @param {string} [level]
 */
function setLogger(callback, level = 'debug') {
  if (callback === null || callback === undefined) {
    native.setLogCallback('off', null)
    return
  }
  if (typeof callback !== 'function') throw new TypeError('setLogger needs a function or null')
  native.setLogCallback(level, (batch) => {
    for (const record of batch) {
      try {
        callback(record)
      } catch (e) {
        queueMicrotask(() => {
          throw e
        })
      }
    }
  })
}

const { fromNative: _, ...publicErrors } = errors

module.exports = {
  Client,
  fetch,
  Response,
  Timings,
  ...publicErrors,
  errorCodes,
  setLogger,
  basicAuth,
  MAX_TIMEOUT_MS,
  version: native.version(),
}
