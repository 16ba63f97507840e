// Types of the public API (index.js). The config types are generated: see config.d.ts.
/// <reference types="node" />
import type { Config } from './config'

export type * from './config'

/** Header input: a plain object, `[name, value]` pairs, a `Map` or a `Headers`. */
export type HeadersInit =
  | Record<string, string | number | ReadonlyArray<string | number> | undefined>
  | Iterable<readonly [string, string | number]>

/** A request body: sent as is, or streamed chunk by chunk from a stream / async iterable. */
export type BodyInit =
  | string
  | Uint8Array
  | ArrayBuffer
  | ArrayBufferView
  | URLSearchParams
  /** Sent as multipart/form-data (a generated boundary, files streamed), as fetch sends it. */
  | FormData
  | ReadableStream<Uint8Array | string>
  | AsyncIterable<Uint8Array | string>
  | NodeJS.ReadableStream

export interface RequestOptions {
  /** Default `GET`. */
  method?: string
  headers?: HeadersInit
  /**
   * HTTP Basic credentials `[username, password]` (as httpx's `auth=(user, password)`), sent as
   * `Authorization: Basic …` in place of an `authorization` header in `headers`. Like any
   * `Authorization`, it is dropped on a redirect to another origin.
   */
  auth?: [username: string, password: string]
  body?: BodyInit | null
  /** A value sent as a JSON body, with `content-type: application/json` unless set. */
  json?: unknown
  /**
   * Total deadline of this request (head and body), overriding `timeouts.totalMs`: above 0, at
   * most `MAX_TIMEOUT_MS` (one year: 31 536 000 000); anything else (0, NaN, Infinity, negative,
   * larger) throws a `RangeError` naming the option before any I/O, a non-number a `TypeError`.
   * Zero is refused in every language (`wirecore::RequestOptions`): leave it out for the config's.
   */
  timeoutMs?: number
  /** TCP connect of a connection this request opens, overriding `timeouts.connectMs`: above 0, at most `MAX_TIMEOUT_MS`. */
  connectTimeoutMs?: number
  /** Longest silence while waiting for response bytes, overriding `timeouts.readIdleMs`: above 0, at most `MAX_TIMEOUT_MS`. */
  readTimeoutMs?: number
  /** Longest wait for a pooled connection, overriding `timeouts.poolAcquireMs`: above 0, at most `MAX_TIMEOUT_MS`. */
  poolTimeoutMs?: number
  /** Aborting cancels the request in the engine; the promise (or body read) rejects with `AbortError`. */
  signal?: AbortSignal | null
  /** Overrides the idempotency guess from the method (decides retries and hedging). */
  idempotent?: boolean
  /** The key of `rateLimit.scope: 'key'` limits. */
  rateLimitKey?: string
  /**
   * The key a `consistent_hash` service (`services` in the config) places this request by (a
   * user, a session, a shard), ahead of the service's `hash.header` or `hash.cookie`. Non-empty,
   * at most 1024 bytes; a bad value rejects with an `InvalidRequestError`.
   */
  balanceKey?: string
  /**
   * The caller's W3C trace context (`00-<trace id>-<span id>-<flags>`): the parent of this
   * request's span when the config's `otel.enabled`, sent unchanged when not. Without it (and
   * without `tracestate`), the active span of `@opentelemetry/api` is used when that package
   * resolves. A bad value rejects with an `InvalidRequestError`.
   */
  traceparent?: string
  /** The `tracestate` that goes with `traceparent` (which it needs). */
  tracestate?: string
  /**
   * RFC 9218 priority: an urgency 0 (most urgent) to 7, 'highest' (0), 'high' (1), 'normal' (3),
   * 'low' (5), 'lowest' (7) or a value like 'u=1, i' (the forms every wirecore language takes).
   * Sent as the `Priority` header, replacing one in `headers` (without it a `Priority` header
   * goes unchanged), and requests waiting for a connection to an origin go most urgent first.
   * A bad value rejects with an `InvalidRequestError`.
   */
  priority?: Priority
  /**
   * What a redirect (301, 302, 303, 307, 308) does: 'follow' (the default) follows it, 'manual'
   * resolves with the 3xx itself, 'error' rejects with a `RedirectError` (`too_many_redirects`).
   * Another value rejects with an `InvalidRequestError`.
   */
  redirect?: RedirectMode
  /** The most redirects followed, overriding `redirect.max`: 0 (the 3xx is returned) to 1000. */
  maxRedirects?: number
  /**
   * How this request uses the client's response cache (`cache.enabled`), as fetch's `cache`
   * option: 'default', 'no-store' (no lookup, nothing stored), 'reload' (no lookup, the answer
   * stored), 'no-cache' (a stored response only after the server confirms it), 'force-cache'
   * (any stored response, however stale), 'only-if-cached' (never asks the server: a stored
   * response or a 504). An unknown word rejects with an `InvalidRequestError`.
   */
  cache?: CacheMode
}

/** One Server-Sent Event. */
export interface ServerSentEvent {
  /** The `event:` field; `'message'` when none was given. */
  event: string
  /** The `data:` lines joined with `\n`. */
  data: string
  /** The last event ID at dispatch (`''` when none). */
  id: string
  /** A `retry:` (ms) given with this event. */
  retry?: number | null
}

/** What a redirect does to a request (as fetch's `redirect`). */
export type RedirectMode = 'follow' | 'manual' | 'error'

/** fetch's cache modes. */
export type CacheMode = 'default' | 'no-store' | 'reload' | 'no-cache' | 'force-cache' | 'only-if-cached'

/** Where a response came from when the client has a cache. */
export type CacheStatus = 'hit' | 'miss' | 'stale' | 'revalidated'

/** An RFC 9218 urgency: 0 (most urgent) to 7 (least; 3 is the default). */
export type Urgency = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7

/** The priority forms every wirecore language accepts. */
export type Priority =
  | Urgency
  | `${Urgency}`
  | 'highest'
  | 'high'
  | 'normal'
  | 'low'
  | 'lowest'
  | `u=${Urgency}`
  | `u=${Urgency}, i`

export interface RequestInit extends RequestOptions {
  url: string | URL
}

/** Time spent in each phase, milliseconds (0 for a phase that did not happen, e.g. on reuse). */
export declare class Timings {
  private constructor()
  readonly dnsMs: number
  readonly connectMs: number
  readonly tlsMs: number
  readonly ttfbMs: number
  readonly totalMs: number
}

export declare class Response implements AsyncIterable<Uint8Array> {
  private constructor()
  readonly status: number
  /** `status` is 2xx. */
  readonly ok: boolean
  /** `'1.1'` or `'2.0'`, as `node:http` spells it. */
  readonly httpVersion: string
  /** The final URL, after redirects. */
  readonly url: string
  /** The request went out on a pooled connection. */
  readonly reused: boolean
  /** Where the response came from; null when the cache took no part (none configured, a request it does not store, cache 'no-store'). */
  readonly cacheStatus: CacheStatus | null
  readonly timings: Timings
  readonly headers: Headers
  /** The body was (or is being) read. */
  readonly bodyUsed: boolean
  /** The body as a web stream; read once (null if the body was already read). */
  readonly body: ReadableStream<Uint8Array> | null
  /** Header name/value pairs in wire order, repeated names kept. */
  rawHeaders(): Array<[string, string]>
  buffer(): Promise<Buffer>
  bytes(): Promise<Uint8Array>
  arrayBuffer(): Promise<ArrayBuffer>
  /** UTF-8; invalid sequences become U+FFFD. */
  text(): Promise<string>
  /** Rejects with a `BodyError` (code `decode`) when the body is not JSON. */
  json<T = unknown>(): Promise<T>
  /** Discards the body. */
  dump(): Promise<void>
  /**
   * The body as Server-Sent Events, parsed by the engine. A `GET`'s event stream reconnects when
   * it ends or breaks, after the server's `retry:`, with `Last-Event-ID`; breaking out of the
   * loop closes it.
   */
  events(): AsyncGenerator<ServerSentEvent, void, undefined>
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>
}

export interface LatencySummary {
  count: number
  meanMs: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  maxMs: number
}

export interface DnsStats {
  hits: number
  misses: number
  staleServed: number
  negativeHits: number
  refreshes: number
  failures: number
}

export interface Evictions {
  idle: number
  lifetime: number
  error: number
  closedByPeer: number
}

export interface PoolStats {
  connections: number
  active: number
  idle: number
  connecting: number
  pending: number
  connects: number
  reuses: number
  h2Sessions: number
  h2OpenStreams: number
  evictions: Evictions
}

export interface OriginStats extends PoolStats {
  protocol: 'h1' | 'h2' | 'unknown'
}

export interface RateLimitStats {
  allowed: number
  waited: number
  rejected: number
  redisErrors: number
  fallbacks: number
}

export interface OriginResilience {
  /** Absent when breakers are off. */
  breakerState?: 'closed' | 'open' | 'half_open' | null
  retryBudgetAvailable: number
  /** Absent when adaptive concurrency is off. */
  concurrencyLimit?: number | null
  concurrencyInFlight?: number | null
  concurrencyWaiting?: number | null
}

export interface ResilienceStats {
  /** First tries, retries and hedges. */
  attempts: number
  /** Keyed by reason (`unsent`, `reset`, `status`, `429`). */
  retries: Record<string, number>
  retryBudgetExhausted: number
  hedgesSent: number
  hedgesWon: number
  breakerTrips: number
  breakerRejected: number
  overloaded: number
  rateLimit: RateLimitStats
  /** Breakers shared through Redis (`breaker.redis`); all zero when off. */
  breakerRedis: BreakerRedisStats
  /** Keyed by origin. */
  origins: Record<string, OriginResilience>
}

export interface BreakerRedisStats {
  published: number
  refreshes: number
  redisErrors: number
  /** Origins open elsewhere, as last read. */
  openRemotely: number
}

/** The response cache's counters (all zero when the cache is off). */
export interface CacheStats {
  hits: number
  misses: number
  /** Conditional requests sent for stale stored responses. */
  revalidations: number
  /** Revalidations answered 304 (the stored body reused). */
  notModified: number
  /** Stale stored responses served unconfirmed (force-cache, only-if-cached, stale-while-revalidate, stale-if-error). */
  staleServed: number
  /** Background revalidations started for stale-while-revalidate. */
  backgroundRefreshes: number
  /** Stale responses served because their revalidation failed (stale-if-error). */
  staleIfError: number
  /** Callers that shared an identical in-flight request's answer. */
  coalesced: number
  stores: number
  invalidations: number
  l1Entries: number
  l1Bytes: number
  /** Memory misses answered by the Redis second level (`cache.l2`). */
  l2Hits: number
  l2Misses: number
  l2Stores: number
  /** Redis reads and writes that failed or timed out. */
  l2Errors: number
  /** Reads and writes that skipped Redis (after an error, or too many writes in flight). */
  l2Bypassed: number
}

/** A request that failed after every retry the policy allowed (`Client.onDeadLetter`). */
export interface DeadLetter {
  method: string
  /** Without userinfo. */
  url: string
  /** `[name, value]` pairs, without Authorization, Proxy-Authorization and Cookie. */
  headers: string[][]
  /** The body when it was buffered and at most `deadLetter.maxBodyBytes`. */
  body?: Buffer
  /** The error's code (`connect`, `timeout.total` ...), or `status`. */
  errorCode: string
  message: string
  /** The last answer's status, when there was one. */
  status?: number
  attempts: number
  /** When it failed, milliseconds since the Unix epoch. */
  timeMs: number
}

/** A finished client span (`Client.onSpan`): the core's `SpanRecord`, the same in every binding. */
export interface Span {
  /** 32 lowercase hex digits. */
  traceId: string
  /** 16 lowercase hex digits. */
  spanId: string
  /** The caller's span (a `traceparent` option or the active OpenTelemetry context). */
  parentSpanId?: string
  traceState?: string
  /** The method (`GET`), or `HTTP` for one the conventions do not know. */
  name: string
  /** Always `client`. */
  kind: string
  startUnixNanos: bigint
  endUnixNanos: bigint
  /** `unset`, or `error` for a failure or a 4xx/5xx answer. */
  status: string
  statusMessage: string
  /**
   * The HTTP client semantic conventions' attributes by name: `http.request.method`,
   * `server.address`, `server.port`, `url.full`, `http.response.status_code`, `error.type` ...
   */
  attributes: Record<string, string | number>
}

export interface DeadLetterStats {
  /** Dead letters handed to the callback. */
  delivered: number
  /** Dead letters appended to the Redis stream. */
  streamed: number
  /** Dead letters lost: queue full, callback failed, Redis failed or skipped. */
  dropped: number
  redisErrors: number
}

/** OpenTelemetry spans sent to `otel.endpoint` or `onSpan` (zero while `otel` is off or has neither). */
export interface OtelStats {
  /** Spans the collector took, plus spans handed to `onSpan`. */
  exported: number
  /** Spans lost: the export queue (`otel.maxQueue`) was full, or the collector refused or did not answer. */
  dropped: number
}

/** The core's stats snapshot; names are the core's metric names in camelCase. */
export interface Stats {
  requestsTotal: number
  requestsInFlight: number
  /** Keyed by class: `'2xx'`, `'4xx'`, ... */
  responsesByStatusClass: Record<string, number>
  /** Keyed by error code (only codes seen). */
  errorsByCode: Record<string, number>
  latency: LatencySummary
  requestsPerSecond: number
  bytesSent: number
  bytesReceived: number
  bytesDecoded: number
  compressionRatio: number
  redirectsFollowed: number
  dns: DnsStats
  pool: PoolStats
  /** Keyed by origin (`https://host:port`). */
  origins: Record<string, OriginStats>
  resilience: ResilienceStats
  cache: CacheStats
  /** Keyed by service name (`Config.services`). */
  services: Record<string, ServiceStats>
  /** Requests that failed after every retry (`onDeadLetter`, `deadLetter.redis`). */
  deadLetter: DeadLetterStats
  /** OpenTelemetry span export (`otel.endpoint`). */
  otel: OtelStats
  [more: string]: unknown
}

/** One load-balanced service. */
export interface ServiceStats {
  strategy: 'round_robin' | 'weighted_round_robin' | 'least_outstanding' | 'p2c_peak_ewma' | 'consistent_hash'
  /** Picks over every endpoint because fewer than the panic threshold were available. */
  panicPicks: number
  /** Keyed by the endpoint's base URL. */
  endpoints: Record<string, EndpointStats>
}

/** One endpoint of a service. */
export interface EndpointStats {
  state: 'healthy' | 'ejected' | 'unhealthy'
  weight: number
  /** Peak-EWMA latency to response head. */
  ewmaMs: number
  outstanding: number
  requests: number
  failures: number
  ejections: number
  healthChecks: number
  healthCheckFailures: number
}

export interface OriginHealth {
  origin: string
  protocol: 'h1' | 'h2' | 'unknown'
  health: 'healthy' | 'saturated' | 'degraded'
  connections: number
  pending: number
  reuseRatio: number
}

export interface Diagnostics {
  requestsTotal: number
  errorRate: number
  meanLatencyMs: number
  p95LatencyMs: number
  p99LatencyMs: number
  requestsPerSecond: number
  compressionRatio: number
  dnsHitRate: number
  connectionReuseRatio: number
  origins: OriginHealth[]
  services: ServiceHealth[]
  [more: string]: unknown
}

export interface ServiceHealth {
  service: string
  strategy: string
  endpoints: EndpointHealth[]
}

export interface EndpointHealth {
  endpoint: string
  state: 'healthy' | 'ejected' | 'unhealthy'
  ewmaMs: number
  outstanding: number
  requests: number
  failures: number
  ejections: number
}

/** One cookie of a client's jar (`Client.cookies()`). */
export interface StoredCookie {
  name: string
  value: string
  /** The host that set it (`hostOnly`) or its `Domain` attribute. */
  domain: string
  hostOnly: boolean
  path: string
  secure: boolean
  httpOnly: boolean
  /** `Strict`, `Lax` or `None` as the server gave it. */
  sameSite: string | null
  /** Milliseconds since the Unix epoch; `null` for a session cookie. */
  expiresMs: number | null
}

export declare class Client {
  /** @throws {ConfigError} an unknown key or a bad value, named as you spelled it. */
  constructor(config?: Config | null)
  request(url: string | URL, options?: RequestOptions): Promise<Response>
  request(init: RequestInit): Promise<Response>
  get(url: string | URL, options?: Omit<RequestOptions, 'method'>): Promise<Response>
  head(url: string | URL, options?: Omit<RequestOptions, 'method'>): Promise<Response>
  post(url: string | URL, options?: Omit<RequestOptions, 'method'>): Promise<Response>
  put(url: string | URL, options?: Omit<RequestOptions, 'method'>): Promise<Response>
  patch(url: string | URL, options?: Omit<RequestOptions, 'method'>): Promise<Response>
  delete(url: string | URL, options?: Omit<RequestOptions, 'method'>): Promise<Response>
  options(url: string | URL, options?: Omit<RequestOptions, 'method'>): Promise<Response>
  /** WHATWG `fetch` through this client: a standard `Response`; failures are `TypeError('fetch failed')` with the `WirecoreError` as `cause`. */
  fetch(input: string | URL | Request, init?: FetchInit): Promise<globalThis.Response>
  /**
   * Calls `callback` with each request that fails after every retry the policy allowed (an
   * error, or a status `retry.retryOnStatus` lists), on the JS thread; replaces an earlier one.
   */
  onDeadLetter(callback: (letter: DeadLetter) => void): void
  /**
   * Calls `callback` with each finished request's span (`otel.enabled`), on the JS thread; spans
   * beyond `otel.callbackQueue` waiting are dropped (`stats().otel.dropped`). `close()` resolves
   * once the queued spans were handed over.
   */
  onSpan(callback: (span: Span) => void): void
  stats(): Stats
  /** The unexpired cookies in the engine's jar (`cookies.enabled`); empty while it is off. */
  cookies(): StoredCookie[]
  /** Empties the engine's cookie jar. */
  clearCookies(): void
  /** Prometheus text exposition (the core's snake_case metric names). */
  prometheus(): string
  diagnostics(): Diagnostics
  diagnostics(format: 'text'): string
  /**
   * Exports the finished OpenTelemetry spans and the `http.client.request.duration` metric to
   * `otel.endpoint` now; resolves once the collector answered or the export failed
   * (`stats().otel.dropped` counts the spans lost). `close()` does this too.
   */
  flushTelemetry(): Promise<void>
  /** Refuses new requests, waits up to `timeoutMs` (default 30 000) for in-flight ones, exports the last spans, closes idle connections. */
  close(options?: { timeoutMs?: number }): Promise<void>
}

/**
 * `RequestInit` as `fetch` takes it, plus `timeoutMs`. `redirect: 'manual'` resolves with the 3xx
 * itself (as Node's fetch, not an opaque response); `'error'` rejects with `TypeError('fetch
 * failed')` whose `cause` is a `RedirectError`.
 */
export interface FetchInit {
  method?: string
  headers?: HeadersInit
  body?: BodyInit | Blob | null
  signal?: AbortSignal | null
  redirect?: RedirectMode
  timeoutMs?: number
  /** The client cache's mode (see `RequestOptions.cache`); 'only-if-cached' without a stored response gives a 504 `Response`, not a rejection. */
  cache?: CacheMode
  credentials?: string
  integrity?: string
  keepalive?: boolean
  mode?: string
  referrer?: string
  referrerPolicy?: string
  duplex?: 'half'
  priority?: 'high' | 'low' | 'auto'
}

/** WHATWG `fetch` over a shared default `Client`: a drop-in for `globalThis.fetch`. */
export declare function fetch(input: string | URL | Request, init?: FetchInit): Promise<globalThis.Response>

/** Every stable error code of the core. */
export type ErrorCode =
  | 'invalid_config'
  | 'invalid_url'
  | 'invalid_header'
  | 'invalid_request'
  | 'dns'
  | 'connect'
  | 'tls'
  | 'io'
  | 'protocol'
  | 'timeout.total'
  | 'timeout.connect'
  | 'timeout.tls'
  | 'timeout.read'
  | 'timeout.pool'
  | 'decode'
  | 'body_too_large'
  | 'too_many_redirects'
  | 'redirect_downgrade'
  | 'closed'
  | 'cancelled'
  | 'circuit_open'
  | 'rate_limited'
  | 'overloaded'
  | 'internal'

export declare class WirecoreError extends Error {
  /** The core's stable code; match on this, not on the message. */
  readonly code: ErrorCode | (string & {})
  /** Any `timeout.*` code. */
  readonly isTimeout: boolean
  /** The request never left this process (`dns`, `connect`, `timeout.connect`). */
  readonly isConnect: boolean
  constructor(code: string, message: string, options?: ErrorOptions)
}
/** `invalid_config` */
export declare class ConfigError extends WirecoreError {}
/** `invalid_url`, `invalid_header`, `invalid_request` */
export declare class InvalidRequestError extends WirecoreError {}
/** `dns`, `connect` */
export declare class ConnectError extends WirecoreError {}
/** `tls` */
export declare class TlsError extends WirecoreError {}
/** `io`, `protocol` */
export declare class TransportError extends WirecoreError {}
/** `timeout.*` */
export declare class TimeoutError extends WirecoreError {}
/** `decode`, `body_too_large` */
export declare class BodyError extends WirecoreError {}
/** `too_many_redirects`, `redirect_downgrade` */
export declare class RedirectError extends WirecoreError {}
/** `circuit_open`, `rate_limited`, `overloaded` */
export declare class RejectedError extends WirecoreError {}
/** `closed` */
export declare class ClosedError extends WirecoreError {}
/** `cancelled`; `.cause` is the signal's reason. */
export declare class AbortError extends WirecoreError {}
/** `internal` */
export declare class InternalError extends WirecoreError {}

/** The class each core code maps to. */
export declare const errorClasses: Readonly<Record<ErrorCode, typeof WirecoreError>>
/** The error object for a code (an unknown code gives a plain `WirecoreError`). */
export declare function errorFor(code: string, message: string, options?: ErrorOptions): WirecoreError
/** Every error code the loaded engine can produce. */
export declare function errorCodes(): string[]

/** One engine event (`setLogger`). */
export interface LogRecord {
  /** `'error'`, `'warn'`, `'info'`, `'debug'` or `'trace'`. */
  level: string
  /** Where it happened (`wirecore::pool::connect`). */
  target: string
  message: string
  /** `event` (`connection_opened`, `retry` ...), `origin`, `attempt`, `error_code` ... */
  fields: Record<string, unknown>
  /** When, milliseconds since the Unix epoch. */
  timeMs: number
}

/**
 * Hands the engine's events at `level` and above (default `'debug'`) to `callback` on the JS
 * thread, for every client of the process; `null` turns it off (the default).
 */
export declare function setLogger(
  callback: ((record: LogRecord) => void) | null,
  level?: 'error' | 'warn' | 'info' | 'debug' | 'trace',
): void
/**
 * `Basic base64(username:password)`, an `Authorization` header value encoded by the engine (as
 * the `auth` request option sends it), for `fetch`: `headers: { authorization: basicAuth(u, p) }`.
 */
export declare function basicAuth(username: string, password?: string): string
/** The longest per-request timeout in milliseconds: one year (31 536 000 000), the core's bound on every duration. */
export declare const MAX_TIMEOUT_MS: number
/** The addon version. */
export declare const version: string
