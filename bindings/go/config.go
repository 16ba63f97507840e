package wirecore

import "encoding/json"

// Config is every knob of a Transport, with the core's field names as JSON tags. A zero field
// means "the core's default" (fields are omitted when empty); a bool whose default is true is a
// *bool (use Bool(false) to turn it off). For a field not listed here, or to set a number to
// an explicit 0, use NewTransportJSON with the core's JSON. Unknown fields are rejected by the
// core with an error naming them.
type Config struct {
	Timeouts       TimeoutConfig     `json:"timeouts,omitzero"`
	Pool           PoolConfig        `json:"pool,omitzero"`
	HTTP2          HTTP2Config       `json:"http2,omitzero"`
	TCP            TCPConfig         `json:"tcp,omitzero"`
	TLS            TLSConfig         `json:"tls,omitzero"`
	DNS            DNSConfig         `json:"dns,omitzero"`
	Compression    CompressionConfig `json:"compression,omitzero"`
	Redirect       RedirectConfig    `json:"redirect,omitzero"`
	Limits         LimitsConfig      `json:"limits,omitzero"`
	Retry          RetryConfig       `json:"retry,omitzero"`
	Breaker        BreakerConfig     `json:"breaker,omitzero"`
	RateLimit      RateLimitConfig   `json:"rate_limit,omitzero"`
	Concurrency    ConcurrencyConfig `json:"concurrency,omitzero"`
	Metrics        MetricsConfig     `json:"metrics,omitzero"`
	Cookies        CookieConfig      `json:"cookies,omitzero"`
	Otel           OtelConfig        `json:"otel,omitzero"`
	DefaultHeaders map[string]string `json:"default_headers,omitempty"`
	UserAgent      string            `json:"user_agent,omitempty"`
	// Services are load-balanced services by name: a request to http://NAME/... goes to one of
	// the service's endpoints (see the core's ServiceConfig).
	Services map[string]ServiceConfig `json:"services,omitempty"`
	// BaseURL is joined to a request URL that is a bare path (see the core's base_url); an
	// http.Client needs absolute URLs, so this serves RoundTrip callers.
	BaseURL string `json:"base_url,omitempty"`
	// Proxy: the engine's proxies (net/http's Transport.Proxy has no place here: the engine
	// owns its connections). HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY are read unless
	// FromEnv is Bool(false).
	Proxy ProxyConfig `json:"proxy,omitzero"`
}

// ProxyConfig: HTTP and HTTPS take "http://[user:password@]host[:port]" (absolute-form
// requests and CONNECT tunnels), "socks5://…" (this client resolves names) or "socks5h://…"
// (the proxy resolves them); NoProxy lists hosts reached directly, as NO_PROXY.
type ProxyConfig struct {
	HTTP    string   `json:"http,omitempty"`
	HTTPS   string   `json:"https,omitempty"`
	NoProxy []string `json:"no_proxy,omitempty"`
	FromEnv *bool    `json:"from_env,omitempty"`
}

// MetricsConfig sets the buckets of the Prometheus latency histogram.
type MetricsConfig struct {
	// LatencyBucketsMs are the upper bounds (le) of wirecore_request_duration_seconds'
	// buckets in milliseconds, ascending; 1 to 64 values (default 1 ms .. 10 s).
	LatencyBucketsMs []float64 `json:"latency_buckets_ms,omitempty"`
}

// ServiceConfig is one load-balanced service. Strategy: "round_robin", "weighted_round_robin",
// "least_outstanding", "p2c_peak_ewma" (default) or "consistent_hash".
type ServiceConfig struct {
	Endpoints             []EndpointConfig  `json:"endpoints,omitempty"`
	DNS                   *DNSEndpoints     `json:"dns,omitempty"`
	Strategy              string            `json:"strategy,omitempty"`
	Hash                  HashKeyConfig     `json:"hash,omitzero"`
	HashLoadFactorPercent uint32            `json:"hash_load_factor_percent,omitempty"`
	EwmaDecayMs           uint64            `json:"ewma_decay_ms,omitempty"`
	EwmaDefaultRttMs      *uint64           `json:"ewma_default_rtt_ms,omitempty"`
	Outlier               OutlierConfig     `json:"outlier,omitzero"`
	HealthCheck           HealthCheckConfig `json:"health_check,omitzero"`
	PanicThresholdPercent *uint32           `json:"panic_threshold_percent,omitempty"`
}

// EndpointConfig is one endpoint: a base URL and a weight (default 1).
type EndpointConfig struct {
	URL    string `json:"url"`
	Weight uint32 `json:"weight,omitempty"`
}

// DNSEndpoints makes every A/AAAA answer of Name an endpoint http://ADDRESS:Port, looked up
// again as the answer's TTL runs out (instead of Endpoints).
type DNSEndpoints struct {
	Name   string `json:"name"`
	Port   uint16 `json:"port"`
	Weight uint32 `json:"weight,omitempty"`
}

// HashKeyConfig says where consistent_hash reads a request's key.
type HashKeyConfig struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
}

// OutlierConfig is passive outlier ejection (on by default).
type OutlierConfig struct {
	Enabled                       *bool   `json:"enabled,omitempty"`
	Consecutive5xx                *uint32 `json:"consecutive_5xx,omitempty"`
	ConsecutiveGatewayErrors      *uint32 `json:"consecutive_gateway_errors,omitempty"`
	ConsecutiveConnectFailures    *uint32 `json:"consecutive_connect_failures,omitempty"`
	IntervalMs                    uint64  `json:"interval_ms,omitempty"`
	SuccessRateMinRequests        *uint32 `json:"success_rate_min_requests,omitempty"`
	SuccessRateMinEndpoints       *uint32 `json:"success_rate_min_endpoints,omitempty"`
	SuccessRateStdevFactorPercent uint32  `json:"success_rate_stdev_factor_percent,omitempty"`
	BaseEjectionMs                uint64  `json:"base_ejection_ms,omitempty"`
	MaxEjectionMs                 uint64  `json:"max_ejection_ms,omitempty"`
	MaxEjectionPercent            *uint32 `json:"max_ejection_percent,omitempty"`
}

// HealthCheckConfig is active health checking (off by default).
type HealthCheckConfig struct {
	Enabled            bool     `json:"enabled,omitempty"`
	Path               string   `json:"path,omitempty"`
	IntervalMs         uint64   `json:"interval_ms,omitempty"`
	TimeoutMs          uint64   `json:"timeout_ms,omitempty"`
	HealthyThreshold   uint32   `json:"healthy_threshold,omitempty"`
	UnhealthyThreshold uint32   `json:"unhealthy_threshold,omitempty"`
	ExpectedStatuses   []uint16 `json:"expected_statuses,omitempty"`
	JitterPercent      *uint32  `json:"jitter_percent,omitempty"`
}

// TimeoutConfig: each timeout is a distinct error code.
type TimeoutConfig struct {
	TotalMs        uint64 `json:"total_ms,omitempty"`
	ConnectMs      uint64 `json:"connect_ms,omitempty"`
	TLSHandshakeMs uint64 `json:"tls_handshake_ms,omitempty"`
	ReadIdleMs     uint64 `json:"read_idle_ms,omitempty"`
	PoolAcquireMs  uint64 `json:"pool_acquire_ms,omitempty"`
}

// PoolConfig: connections per origin.
type PoolConfig struct {
	MaxConnections        uint64 `json:"max_connections,omitempty"`
	MaxConnectionsPerHost uint64 `json:"max_connections_per_host,omitempty"`
	MaxIdlePerHost        uint64 `json:"max_idle_per_host,omitempty"`
	IdleTimeoutMs         uint64 `json:"idle_timeout_ms,omitempty"`
	MaxLifetimeMs         uint64 `json:"max_lifetime_ms,omitempty"`
	MaxPendingPerHost     uint64 `json:"max_pending_per_host,omitempty"`
}

// HTTP2Config: HTTP/2 negotiation and windows.
type HTTP2Config struct {
	Enabled                      *bool  `json:"enabled,omitempty"`
	PriorKnowledge               bool   `json:"prior_knowledge,omitempty"`
	InitialStreamWindowBytes     uint32 `json:"initial_stream_window_bytes,omitempty"`
	InitialConnectionWindowBytes uint32 `json:"initial_connection_window_bytes,omitempty"`
	MaxConcurrentStreams         uint32 `json:"max_concurrent_streams,omitempty"`
	MaxSessionsPerHost           uint32 `json:"max_sessions_per_host,omitempty"`
	BusyStreamsPerSession        uint32 `json:"busy_streams_per_session,omitempty"`
	KeepAliveIntervalMs          uint64 `json:"keep_alive_interval_ms,omitempty"`
	KeepAliveTimeoutMs           uint64 `json:"keep_alive_timeout_ms,omitempty"`
	MaxFrameBytes                uint32 `json:"max_frame_bytes,omitempty"`
}

// TCPConfig: socket options.
type TCPConfig struct {
	Nodelay              *bool  `json:"nodelay,omitempty"`
	KeepaliveMs          uint64 `json:"keepalive_ms,omitempty"`
	HappyEyeballsDelayMs uint64 `json:"happy_eyeballs_delay_ms,omitempty"`
}

// TLSConfig: roots, client certificates, versions.
type TLSConfig struct {
	Roots                    string   `json:"roots,omitempty"` // "webpki", "native" or "none"
	ExtraCAPEM               []string `json:"extra_ca_pem,omitempty"`
	CAFiles                  []string `json:"ca_files,omitempty"`
	ClientCert               string   `json:"client_cert,omitempty"`
	ClientKey                string   `json:"client_key,omitempty"`
	MinVersion               string   `json:"min_version,omitempty"` // "1.2" or "1.3"
	SessionResumption        *bool    `json:"session_resumption,omitempty"`
	DangerAcceptInvalidCerts bool     `json:"danger_accept_invalid_certs,omitempty"`
}

// DNSConfig: the DNS cache.
type DNSConfig struct {
	CacheSize                  uint64   `json:"cache_size,omitempty"`
	MinTTLMs                   uint64   `json:"min_ttl_ms,omitempty"`
	MaxTTLMs                   uint64   `json:"max_ttl_ms,omitempty"`
	NegativeTTLMs              uint64   `json:"negative_ttl_ms,omitempty"`
	RefreshBeforeExpiryPercent uint8    `json:"refresh_before_expiry_percent,omitempty"`
	ServeStaleMs               uint64   `json:"serve_stale_ms,omitempty"`
	Nameservers                []string `json:"nameservers,omitempty"`
	QueryTimeoutMs             uint64   `json:"query_timeout_ms,omitempty"`
	UseHostsFile               *bool    `json:"use_hosts_file,omitempty"`
}

// CompressionConfig: response decoding and request encoding.
type CompressionConfig struct {
	Accept          []string `json:"accept,omitempty"`           // "gzip", "deflate", "br", "zstd"
	RequestEncoding string   `json:"request_encoding,omitempty"` // "gzip" or "zstd"
	RequestMinBytes uint64   `json:"request_min_bytes,omitempty"`
	RequestHosts    []string `json:"request_hosts,omitempty"`
}

// RedirectConfig: redirects. Under a Transport, http.Client follows them (Max is ignored);
// AllowDowngrade and ForwardHeaders still apply to its hops.
type RedirectConfig struct {
	Max *uint32 `json:"max,omitempty"`
	// AllowDowngrade false refuses https → http redirects (ErrRedirectDowngrade).
	AllowDowngrade *bool `json:"allow_downgrade,omitempty"`
	// ForwardHeaders lets the named headers follow a redirect to another origin.
	ForwardHeaders []ForwardHeaders `json:"forward_headers,omitempty"`
}

// ForwardHeaders: headers a redirect may carry to one origin (scheme://host[:port]).
type ForwardHeaders struct {
	Origin  string   `json:"origin"`
	Headers []string `json:"headers"`
}

// LimitsConfig: response size limits.
type LimitsConfig struct {
	MaxResponseBodyBytes   uint64 `json:"max_response_body_bytes,omitempty"`
	MaxResponseHeaderBytes uint64 `json:"max_response_header_bytes,omitempty"`
	// Largest decoded/compressed ratio of a body (checked past 1 MiB); nil keeps 100, 0 disables.
	MaxDecompressionRatio *uint32 `json:"max_decompression_ratio,omitempty"`
}

// RetryConfig: retries with backoff and a budget.
type RetryConfig struct {
	Enabled            *bool             `json:"enabled,omitempty"`
	MaxAttempts        uint32            `json:"max_attempts,omitempty"`
	BackoffBaseMs      uint64            `json:"backoff_base_ms,omitempty"`
	BackoffMaxMs       uint64            `json:"backoff_max_ms,omitempty"`
	BackoffMultiplier  float64           `json:"backoff_multiplier,omitempty"`
	RetryOnStatus      []uint16          `json:"retry_on_status,omitempty"`
	RetryOn429         *bool             `json:"retry_on_429,omitempty"`
	RetryAfterMaxMs    uint64            `json:"retry_after_max_ms,omitempty"`
	NonIdempotent      bool              `json:"non_idempotent,omitempty"`
	MaxReplayBodyBytes uint64            `json:"max_replay_body_bytes,omitempty"`
	Budget             RetryBudgetConfig `json:"budget,omitzero"`
	Hedge              HedgeConfig       `json:"hedge,omitzero"`
}

// RetryBudgetConfig: retries never exceed this share of load.
type RetryBudgetConfig struct {
	Enabled      *bool  `json:"enabled,omitempty"`
	RatioPercent uint32 `json:"ratio_percent,omitempty"`
	MinPerSecond uint32 `json:"min_per_second,omitempty"`
	WindowMs     uint64 `json:"window_ms,omitempty"`
}

// HedgeConfig: a second attempt when the first is slow.
type HedgeConfig struct {
	Enabled    bool    `json:"enabled,omitempty"`
	DelayMs    uint64  `json:"delay_ms,omitempty"`
	MinDelayMs uint64  `json:"min_delay_ms,omitempty"`
	MinSamples uint64  `json:"min_samples,omitempty"`
	Percentile float64 `json:"percentile,omitempty"`
}

// BreakerConfig: a circuit breaker per origin.
type BreakerConfig struct {
	Enabled             bool   `json:"enabled,omitempty"`
	ConsecutiveFailures uint32 `json:"consecutive_failures,omitempty"`
	FailureRatioPercent uint32 `json:"failure_ratio_percent,omitempty"`
	MinRequests         uint32 `json:"min_requests,omitempty"`
	WindowMs            uint64 `json:"window_ms,omitempty"`
	OpenMs              uint64 `json:"open_ms,omitempty"`
	MaxOpenMs           uint64 `json:"max_open_ms,omitempty"`
	HalfOpenProbes      uint32 `json:"half_open_probes,omitempty"`
	SuccessThreshold    uint32 `json:"success_threshold,omitempty"`
	FailureOn5xx        *bool  `json:"failure_on_5xx,omitempty"`
	FailureOn429        bool   `json:"failure_on_429,omitempty"`
}

// RateLimitConfig: a rate limit per origin, per client or per key.
type RateLimitConfig struct {
	Enabled   bool             `json:"enabled,omitempty"`
	Requests  uint64           `json:"requests,omitempty"`
	PerMs     uint64           `json:"per_ms,omitempty"`
	Burst     uint64           `json:"burst,omitempty"`
	Mode      string           `json:"mode,omitempty"` // "wait" or "fail"
	MaxWaitMs uint64           `json:"max_wait_ms,omitempty"`
	Scope     string           `json:"scope,omitempty"`   // "origin", "client" or "key" (Options.RateLimitKey)
	Backend   string           `json:"backend,omitempty"` // "local" or "redis"
	Redis     RedisLimitConfig `json:"redis,omitzero"`
}

// RedisLimitConfig: a rate limit shared through Redis.
type RedisLimitConfig struct {
	URL       string `json:"url,omitempty"`
	KeyPrefix string `json:"key_prefix,omitempty"`
	Algorithm string `json:"algorithm,omitempty"` // "token_bucket", "sliding_window" or "fixed_window"
	TimeoutMs uint64 `json:"timeout_ms,omitempty"`
	OnError   string `json:"on_error,omitempty"` // "fail_open" or "fail_closed"
}

// ConcurrencyConfig: an adaptive concurrency limit.
type ConcurrencyConfig struct {
	Enabled          bool    `json:"enabled,omitempty"`
	InitialLimit     uint32  `json:"initial_limit,omitempty"`
	MinLimit         uint32  `json:"min_limit,omitempty"`
	MaxLimit         uint32  `json:"max_limit,omitempty"`
	MaxQueue         uint32  `json:"max_queue,omitempty"`
	BackoffRatio     float64 `json:"backoff_ratio,omitempty"`
	LatencyTolerance float64 `json:"latency_tolerance,omitempty"`
}

// Bool returns a pointer to v, for the *bool fields of Config.
func Bool(v bool) *bool { return &v }

// Uint32 returns a pointer to v, for Redirect.Max (0 disables redirects).
func Uint32(v uint32) *uint32 { return &v }

// JSON is the config as the core reads it.
func (c Config) JSON() (string, error) {
	b, err := json.Marshal(c)
	return string(b), err
}

// OtelConfig is the engine's OpenTelemetry tracing, off by default: a client span per request
// (HTTP semantic conventions), its W3C traceparent sent with the request, and the
// http.client.request.duration histogram, exported as OTLP/HTTP JSON to Endpoint
// (e.g. "http://127.0.0.1:4318"). The parent is Options.Traceparent, else a traceparent header
// already on the request (as otelhttp.NewTransport wrapped around this one sets).
type OtelConfig struct {
	Enabled  bool              `json:"enabled,omitempty"`
	Endpoint string            `json:"endpoint,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	// ServiceName is the service.name resource attribute (default "unknown_service").
	ServiceName string `json:"service_name,omitempty"`
	// ExportIntervalMs is how often spans and the metric go out; 0 means the core's 5000.
	ExportIntervalMs uint64 `json:"export_interval_ms,omitempty"`
	// MaxQueue bounds the spans waiting for export; 0 means the core's 2048.
	MaxQueue uint64 `json:"max_queue,omitempty"`
	// CallbackQueue bounds the spans waiting for the Transport's OnSpan callback; more are
	// dropped and counted in Stats.Otel.Dropped. 0 means the core's 2048.
	CallbackQueue uint64 `json:"callback_queue,omitempty"`
	// Metrics turns the duration histogram's export off with Bool(false) (default on).
	Metrics *bool `json:"metrics,omitempty"`
}

// CookieConfig is the engine's RFC 6265 cookie jar, off by default (see Transport.Cookies).
// An http.Client's own Jar works without it.
type CookieConfig struct {
	Enabled bool `json:"enabled,omitempty"`
	// MaxCookies bounds the jar; 0 means the core's default (3000).
	MaxCookies uint64 `json:"max_cookies,omitempty"`
}
