'use strict'
// The core's error codes as Error subclasses: one class per family, `.code` always the core's
// stable code. Match on `.code` (or `instanceof` a family), never on the message text.

class WirecoreError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.code = code
  }

  get name() {
    return this.constructor.name
  }

  /** Any `timeout.*` code. */
  get isTimeout() {
    return this.code.startsWith('timeout.')
  }

  /** The request never left this process, so it is safe to retry whatever the method. */
  get isConnect() {
    return this.code === 'dns' || this.code === 'connect' || this.code === 'timeout.connect'
  }
}

/** `invalid_config`: an unknown key, a wrong type or a value out of range; the message names the key. */
class ConfigError extends WirecoreError {}
/** `invalid_url`, `invalid_header`, `invalid_request`: rejected before any I/O. */
class InvalidRequestError extends WirecoreError {}
/** `dns`, `connect`: the connection could not be made. */
class ConnectError extends WirecoreError {}
/** `tls`: handshake or certificate verification failed. */
class TlsError extends WirecoreError {}
/** `io`, `protocol`: the connection failed or the peer broke HTTP after connecting. */
class TransportError extends WirecoreError {}
/** `timeout.total`, `timeout.connect`, `timeout.tls`, `timeout.read`, `timeout.pool`. */
class TimeoutError extends WirecoreError {}
/** `decode`, `body_too_large`: the response body could not be delivered as asked. */
class BodyError extends WirecoreError {}
/** `too_many_redirects`, `redirect_downgrade` (https → http refused). */
class RedirectError extends WirecoreError {}
/** `circuit_open`, `rate_limited`, `overloaded`: the client refused to send the request. */
class RejectedError extends WirecoreError {}
/** `closed`: the client was closed. */
class ClosedError extends WirecoreError {}
/** `cancelled`: an `AbortSignal` fired; `.cause` is the signal's reason. */
class AbortError extends WirecoreError {}
/** `internal`: a bug in wirecore. */
class InternalError extends WirecoreError {}

const CLASSES = {
  invalid_config: ConfigError,
  invalid_url: InvalidRequestError,
  invalid_header: InvalidRequestError,
  invalid_request: InvalidRequestError,
  dns: ConnectError,
  connect: ConnectError,
  tls: TlsError,
  io: TransportError,
  protocol: TransportError,
  'timeout.total': TimeoutError,
  'timeout.connect': TimeoutError,
  'timeout.tls': TimeoutError,
  'timeout.read': TimeoutError,
  'timeout.pool': TimeoutError,
  decode: BodyError,
  body_too_large: BodyError,
  too_many_redirects: RedirectError,
  redirect_downgrade: RedirectError,
  circuit_open: RejectedError,
  rate_limited: RejectedError,
  overloaded: RejectedError,
  closed: ClosedError,
  cancelled: AbortError,
  internal: InternalError,
}

/** The error for a core code; an unknown code still gets a `WirecoreError` with that code. */
function errorFor(code, message, options) {
  const Class = Object.hasOwn(CLASSES, code) ? CLASSES[code] : WirecoreError
  return new Class(code, message, options)
}

const NATIVE = /^\[wirecore:([a-z0-9_.]+)\] ([\s\S]*)$/

/**
 * Turns an error thrown by the addon (`[wirecore:code] message`) into its class; a panic the
 * addon caught at its boundary (a bare `GenericFailure`) is an `InternalError`.
 */
function fromNative(e) {
  if (!(e instanceof Error)) return e
  const m = NATIVE.exec(e.message)
  if (m) return errorFor(m[1], m[2])
  if (/** @type {Error & { code?: string }} */ (e).code === 'GenericFailure') return errorFor('internal', `wirecore panicked: ${e.message}`, { cause: e })
  return e
}

module.exports = {
  WirecoreError,
  ConfigError,
  InvalidRequestError,
  ConnectError,
  TlsError,
  TransportError,
  TimeoutError,
  BodyError,
  RedirectError,
  RejectedError,
  ClosedError,
  AbortError,
  InternalError,
  errorClasses: CLASSES,
  errorFor,
  fromNative,
}
