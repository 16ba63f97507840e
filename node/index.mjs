// ESM entry: the same objects as the CommonJS entry (one addon instance per environment).
import { createRequire } from 'node:module'

const wirecore = createRequire(import.meta.url)('./index.js')

export const {
  Client,
  fetch,
  Response,
  Timings,
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
  errorClasses,
  errorFor,
  errorCodes,
  setLogger,
  basicAuth,
  MAX_TIMEOUT_MS,
  version,
} = wirecore
export default wirecore
