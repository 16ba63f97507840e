package wirecore

// Stats is a snapshot of every counter of a Transport, with the same names as in every
// other language (the core's JSON).
type Stats struct {
	RequestsTotal          uint64                 `json:"requests_total"`
	RequestsInFlight       uint64                 `json:"requests_in_flight"`
	ResponsesByStatusClass map[string]uint64      `json:"responses_by_status_class"`
	ErrorsByCode           map[string]uint64      `json:"errors_by_code"`
	Latency                LatencySummary         `json:"latency"`
	RequestsPerSecond      float64                `json:"requests_per_second"`
	BytesSent              uint64                 `json:"bytes_sent"`
	BytesReceived          uint64                 `json:"bytes_received"`
	BytesDecoded           uint64                 `json:"bytes_decoded"`
	CompressionRatio       float64                `json:"compression_ratio"`
	RedirectsFollowed      uint64                 `json:"redirects_followed"`
	DNS                    DNSStats               `json:"dns"`
	Pool                   PoolStats              `json:"pool"`
	Origins                map[string]OriginStats `json:"origins"`
	Resilience             ResilienceStats        `json:"resilience"`
	Cache                  CacheStats             `json:"cache"`
	// DeadLetter counts requests that failed after every retry (Transport.OnDeadLetter).
	DeadLetter DeadLetterStats `json:"dead_letter"`
	// Otel counts the OpenTelemetry spans sent to Config.Otel.Endpoint.
	Otel OtelStats `json:"otel"`
	// Services are the load-balanced services (Config.Services), by name.
	Services map[string]ServiceStats `json:"services"`
}

// CacheStats are the response cache's counters (all zero when the cache is off).
type CacheStats struct {
	Hits          uint64 `json:"hits"`
	Misses        uint64 `json:"misses"`
	Revalidations uint64 `json:"revalidations"`
	NotModified   uint64 `json:"not_modified"`
	StaleServed   uint64 `json:"stale_served"` // served stale without revalidation
	// BackgroundRefreshes are stale-while-revalidate refreshes started.
	BackgroundRefreshes uint64 `json:"background_refreshes"`
	StaleIfError        uint64 `json:"stale_if_error"` // served stale on a failed revalidation
	Coalesced           uint64 `json:"coalesced"`
	Stores              uint64 `json:"stores"`
	Invalidations       uint64 `json:"invalidations"`
	L1Entries           uint64 `json:"l1_entries"`
	L1Bytes             uint64 `json:"l1_bytes"`
	// L2Hits are memory misses answered by the Redis second level (Config.Cache.L2).
	L2Hits   uint64 `json:"l2_hits"`
	L2Misses uint64 `json:"l2_misses"`
	L2Stores uint64 `json:"l2_stores"`
	// L2Errors are Redis reads and writes that failed or timed out.
	L2Errors uint64 `json:"l2_errors"`
	// L2Bypassed are reads and writes that skipped Redis (after an error, or too many writes).
	L2Bypassed uint64 `json:"l2_bypassed"`
}

// ServiceStats is one load-balanced service.
type ServiceStats struct {
	Strategy   string                   `json:"strategy"`
	PanicPicks uint64                   `json:"panic_picks"` // picks over every endpoint (panic threshold)
	Endpoints  map[string]EndpointStats `json:"endpoints"`   // by base URL
}

// EndpointStats is one endpoint of a service.
type EndpointStats struct {
	State               string  `json:"state"` // "healthy", "ejected" or "unhealthy"
	Weight              uint32  `json:"weight"`
	EwmaMs              float64 `json:"ewma_ms"` // peak-EWMA latency to response head
	Outstanding         uint64  `json:"outstanding"`
	Requests            uint64  `json:"requests"`
	Failures            uint64  `json:"failures"`
	Ejections           uint64  `json:"ejections"`
	HealthChecks        uint64  `json:"health_checks"`
	HealthCheckFailures uint64  `json:"health_check_failures"`
}

// ResilienceStats are the counters of the resilience policies.
type ResilienceStats struct {
	Attempts             uint64                      `json:"attempts"`
	Retries              map[string]uint64           `json:"retries"`
	RetryBudgetExhausted uint64                      `json:"retry_budget_exhausted"`
	HedgesSent           uint64                      `json:"hedges_sent"`
	HedgesWon            uint64                      `json:"hedges_won"`
	BreakerTrips         uint64                      `json:"breaker_trips"`
	BreakerRejected      uint64                      `json:"breaker_rejected"`
	Overloaded           uint64                      `json:"overloaded"`
	RateLimit            RateLimitStats              `json:"rate_limit"`
	BreakerRedis         BreakerRedisStats           `json:"breaker_redis"`
	Origins              map[string]OriginResilience `json:"origins"`
}

// BreakerRedisStats count the breakers shared through Redis (breaker.redis).
type BreakerRedisStats struct {
	Published    uint64 `json:"published"`
	Refreshes    uint64 `json:"refreshes"`
	RedisErrors  uint64 `json:"redis_errors"`
	OpenRemotely uint64 `json:"open_remotely"`
}

// RateLimitStats are the rate limiter's counters.
type RateLimitStats struct {
	Allowed     uint64 `json:"allowed"`
	Waited      uint64 `json:"waited"`
	Rejected    uint64 `json:"rejected"`
	RedisErrors uint64 `json:"redis_errors"`
	Fallbacks   uint64 `json:"fallbacks"`
}

// OriginResilience is one origin's resilience state; a nil field is a policy that is off.
type OriginResilience struct {
	BreakerState         *string `json:"breaker_state"` // "closed", "open" or "half_open"
	RetryBudgetAvailable uint64  `json:"retry_budget_available"`
	ConcurrencyLimit     *uint32 `json:"concurrency_limit"`
	ConcurrencyInFlight  *uint32 `json:"concurrency_in_flight"`
	ConcurrencyWaiting   *uint64 `json:"concurrency_waiting"`
}

// LatencySummary is the latency to the response head, in milliseconds.
type LatencySummary struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// DNSStats are the DNS cache counters.
type DNSStats struct {
	Hits         uint64 `json:"hits"`
	Misses       uint64 `json:"misses"`
	StaleServed  uint64 `json:"stale_served"`
	NegativeHits uint64 `json:"negative_hits"`
	Refreshes    uint64 `json:"refreshes"`
	Failures     uint64 `json:"failures"`
}

// Evictions counts closed connections by reason.
type Evictions struct {
	Idle         uint64 `json:"idle"`
	Lifetime     uint64 `json:"lifetime"`
	Error        uint64 `json:"error"`
	ClosedByPeer uint64 `json:"closed_by_peer"`
}

// PoolStats are the pool gauges and counters, for one origin or summed.
type PoolStats struct {
	Connections   uint64    `json:"connections"`
	Active        uint64    `json:"active"`
	Idle          uint64    `json:"idle"`
	Connecting    uint64    `json:"connecting"`
	Pending       uint64    `json:"pending"`
	Connects      uint64    `json:"connects"`
	Reuses        uint64    `json:"reuses"`
	H2Sessions    uint64    `json:"h2_sessions"`
	H2OpenStreams uint64    `json:"h2_open_streams"`
	Evictions     Evictions `json:"evictions"`
}

// OriginStats is one origin's pool and the protocol it speaks ("h1", "h2", "unknown").
type OriginStats struct {
	Protocol string `json:"protocol"`
	PoolStats
}

// OtelStats are the OpenTelemetry span export's counters (zero while Config.Otel is off or
// has no endpoint).
type OtelStats struct {
	// Exported are spans the collector took.
	Exported uint64 `json:"exported"`
	// Dropped are spans lost: the export queue (Otel.MaxQueue) was full, or the collector
	// refused or did not answer.
	Dropped uint64 `json:"dropped"`
}

// DeadLetterStats are the dead-letter sinks' counters.
type DeadLetterStats struct {
	// Delivered are dead letters handed to the callback.
	Delivered uint64 `json:"delivered"`
	// Streamed are dead letters appended to the Redis stream.
	Streamed uint64 `json:"streamed"`
	// Dropped are dead letters lost: queue full, Redis failed or skipped.
	Dropped     uint64 `json:"dropped"`
	RedisErrors uint64 `json:"redis_errors"`
}
