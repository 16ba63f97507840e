package wirecore

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

// Options are per-request engine options, the ones Python and Node take as keyword options.
// Attach them to a request's context:
//
//	ctx := wirecore.WithOptions(req.Context(), wirecore.Options{RateLimitKey: tenant})
//	resp, err := client.Do(req.WithContext(ctx))
//
// The zero value changes nothing. The total timeout is the context's deadline.
type Options struct {
	// Idempotent declares the request safe (true) or unsafe (false) to repeat, for retries
	// and hedging; nil decides by method and an Idempotency-Key header.
	Idempotent *bool
	// RateLimitKey is the bucket under rate_limit.scope "key" (a tenant, a user); "" counts
	// the request under its origin.
	RateLimitKey string
	// BalanceKey is the key a consistent_hash service (Config.Services) places the request by
	// (a user, a session, a shard), ahead of the service's hash header or cookie; "" leaves
	// those to decide. At most 1024 bytes.
	BalanceKey string
	// Traceparent is the caller's W3C trace context ("00-<trace id>-<span id>-<flags>"): the
	// parent of the request's span when Config.Otel is enabled, sent unchanged when it is not.
	// "" sends none of its own (a traceparent header on the request, as otelhttp.NewTransport
	// sets it, is then the parent). Tracestate goes with it. A value that breaks the W3C rules
	// fails with code "invalid_request".
	Traceparent string
	Tracestate  string
	// ConnectTimeout, ReadTimeout and PoolTimeout override timeouts.connect_ms,
	// timeouts.read_idle_ms and timeouts.pool_acquire_ms; 0 keeps the config's. Each fails
	// with its own code (ErrTimeoutConnect, ErrTimeoutRead, ErrTimeoutPool).
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	PoolTimeout    time.Duration
	// Priority is the RFC 9218 priority: sent as the Priority header, replacing one already on
	// the request, and it orders requests waiting for a connection to their origin, most urgent
	// first. nil sends a Priority header of the request unchanged (its u= orders the queue) or
	// leaves the default urgency 3. The same rule holds in every language. ParsePriority reads
	// the forms the other languages take ("high", "2", "u=1, i").
	Priority *Priority
	// Redirect is what a redirect (301, 302, 303, 307, 308) does to the request: RedirectFollow
	// (also ""), RedirectManual (the 3xx is the response) or RedirectError (ErrTooManyRedirects).
	// Under a Transport, http.Client follows redirects: set its CheckRedirect to
	// wirecore.CheckRedirect for RedirectManual and MaxRedirects to apply there; RedirectError
	// applies either way. Another value fails with an *Error coded "invalid_request".
	Redirect RedirectPolicy
	// MaxRedirects is the most redirects followed, 0 (the 3xx is the response) to 1000; nil
	// keeps the config's redirect.max (under http.Client with wirecore.CheckRedirect: 10 requests,
	// as http.Client's default).
	MaxRedirects *uint32
	// Cache is how the request uses the client's response cache (Config.Cache), fetch's cache
	// option; "" is CacheDefault. An unknown word fails with code "invalid_request".
	Cache CacheMode
}

// RedirectPolicy is what a redirect does to a request (Options.Redirect), as fetch's redirect.
type RedirectPolicy string

// The redirect policies every wirecore language takes.
const (
	RedirectFollow RedirectPolicy = "follow"
	RedirectManual RedirectPolicy = "manual"
	RedirectError  RedirectPolicy = "error"
)

// CheckRedirect is an http.Client CheckRedirect that applies the request's Options (from its
// context): RedirectManual and MaxRedirects 0 return the 3xx itself (http.ErrUseLastResponse),
// RedirectError and more than MaxRedirects redirects fail with ErrTooManyRedirects. Without
// options it stops after 10 requests, as http.Client's default does.
//
//	client := &http.Client{Transport: t, CheckRedirect: wirecore.CheckRedirect}
func CheckRedirect(req *http.Request, via []*http.Request) error {
	o, _ := req.Context().Value(optionsKey{}).(Options)
	switch o.Redirect {
	case RedirectManual:
		return http.ErrUseLastResponse
	case RedirectError:
		return &Error{Code: "too_many_redirects", Message: "redirected to " + req.URL.Redacted() +
			`: the request's redirect policy is "error"`}
	}
	if o.MaxRedirects == nil {
		if len(via) >= 10 {
			return &Error{Code: "too_many_redirects", Message: "stopped after 10 redirects"}
		}
		return nil
	}
	limit := int(*o.MaxRedirects)
	if limit == 0 {
		return http.ErrUseLastResponse
	}
	if len(via) > limit {
		return &Error{Code: "too_many_redirects", Message: "more than " + strconv.Itoa(limit) +
			" redirects (last to " + req.URL.Redacted() + ")"}
	}
	return nil
}

// CacheMode is a request's cache mode: the meanings of fetch's cache option, in every language.
type CacheMode string

// The cache modes.
const (
	// CacheDefault follows RFC 9111: fresh stored responses answer, stale ones are revalidated.
	CacheDefault CacheMode = "default"
	// CacheNoStore keeps the cache out: no lookup, nothing stored (the status is "").
	CacheNoStore CacheMode = "no-store"
	// CacheReload skips the lookup but stores the answer.
	CacheReload CacheMode = "reload"
	// CacheNoCache uses a stored response only after the server confirms it (304).
	CacheNoCache CacheMode = "no-cache"
	// CacheForceCache uses any stored response, however stale; without one it asks.
	CacheForceCache CacheMode = "force-cache"
	// CacheOnlyIfCached never asks the server: a stored response, however stale, or a 504.
	CacheOnlyIfCached CacheMode = "only-if-cached"
)

// Priority is an RFC 9218 priority.
type Priority struct {
	// Urgency is 0 (most urgent) to 7 (least); 3 is the default.
	Urgency uint8
	// Incremental tells the server the response is useful in pieces (", i").
	Incremental bool
}

// ParsePriority parses the priority forms every wirecore language accepts: an urgency "0" to
// "7", a word ("highest" 0, "high" 1, "normal" 3, "low" 5, "lowest" 7; any case) or an
// RFC 9218 value ("u=1, i"). The error is an *Error with code "invalid_request".
func ParsePriority(s string) (Priority, error) {
	u, i, rc, e := capi.ParsePriority(s)
	if rc != capi.OK {
		return Priority{}, errorOf(rc, e)
	}
	return Priority{Urgency: u, Incremental: i}, nil
}

type optionsKey struct{}

// WithOptions returns a copy of ctx whose requests carry o (replacing options set on a parent
// context). http.Client's redirect hops keep the request's context, so they carry o too.
func WithOptions(ctx context.Context, o Options) context.Context {
	return context.WithValue(ctx, optionsKey{}, o)
}

// engineOptions converts the context's options, checked before any I/O; nil when none.
// hostRedirects: http.Client follows redirects, so the engine never does (a follow policy goes
// down as "manual", still checked by the engine, and CheckRedirect applies it).
func engineOptions(ctx context.Context, hostRedirects bool) (*capi.Options, *Error) {
	o, ok := ctx.Value(optionsKey{}).(Options)
	if !ok {
		return nil, nil
	}
	c := &capi.Options{Idempotent: -1, Urgency: -1, RateLimitKey: o.RateLimitKey,
		Redirect: string(o.Redirect), MaxRedirects: -1, Cache: string(o.Cache),
		BalanceKey: o.BalanceKey, Traceparent: o.Traceparent, Tracestate: o.Tracestate}
	if o.MaxRedirects != nil {
		c.MaxRedirects = int64(*o.MaxRedirects)
	}
	if hostRedirects && (o.Redirect == RedirectFollow || o.Redirect == "" && o.MaxRedirects != nil) {
		c.Redirect = string(RedirectManual)
	}
	if o.Idempotent != nil {
		c.Idempotent = 0
		if *o.Idempotent {
			c.Idempotent = 1
		}
	}
	for _, p := range []struct {
		name string
		d    time.Duration
		ms   *uint64
	}{{"ConnectTimeout", o.ConnectTimeout, &c.ConnectMs}, {"ReadTimeout", o.ReadTimeout, &c.ReadMs},
		{"PoolTimeout", o.PoolTimeout, &c.PoolMs}} {
		if p.d < 0 {
			return nil, &Error{Code: "invalid_request", Message: "wirecore.Options." + p.name +
				" must be 0 (the config's) or positive, got " + p.d.String()}
		}
		// Rounded up, so a positive duration never becomes 0 (the config's); the engine checks
		// the upper bound (one year) and names the option.
		*p.ms = uint64((p.d + time.Millisecond - 1) / time.Millisecond)
	}
	if o.Priority != nil {
		c.Urgency = int(o.Priority.Urgency)
		c.Incremental = o.Priority.Incremental
	}
	return c, nil
}

// Diagnostics is the engine's health report (the same fields as in every other language).
type Diagnostics struct {
	RequestsTotal        uint64          `json:"requests_total"`
	ErrorRate            float64         `json:"error_rate"` // errors / requests
	MeanLatencyMs        float64         `json:"mean_latency_ms"`
	P95LatencyMs         float64         `json:"p95_latency_ms"`
	P99LatencyMs         float64         `json:"p99_latency_ms"`
	RequestsPerSecond    float64         `json:"requests_per_second"` // over the last 10 s
	CompressionRatio     float64         `json:"compression_ratio"`   // decoded / received bytes
	DNSHitRate           float64         `json:"dns_hit_rate"`
	ConnectionReuseRatio float64         `json:"connection_reuse_ratio"`
	Origins              []OriginHealth  `json:"origins"`
	Services             []ServiceHealth `json:"services"`
}

// ServiceHealth is one load-balanced service in Diagnostics.
type ServiceHealth struct {
	Service   string           `json:"service"`
	Strategy  string           `json:"strategy"`
	Endpoints []EndpointHealth `json:"endpoints"`
}

// EndpointHealth is one endpoint of a service in Diagnostics.
type EndpointHealth struct {
	Endpoint    string  `json:"endpoint"` // base URL
	State       string  `json:"state"`    // "healthy", "ejected" or "unhealthy"
	EwmaMs      float64 `json:"ewma_ms"`
	Outstanding uint64  `json:"outstanding"`
	Requests    uint64  `json:"requests"`
	Failures    uint64  `json:"failures"`
	Ejections   uint64  `json:"ejections"`
}

// OriginHealth is one origin in Diagnostics.
type OriginHealth struct {
	Origin      string  `json:"origin"`   // scheme://host:port
	Protocol    string  `json:"protocol"` // "h1", "h2" or "unknown"
	Health      string  `json:"health"`   // "healthy", "saturated" (requests waiting) or "degraded"
	Connections uint64  `json:"connections"`
	Pending     uint64  `json:"pending"`
	ReuseRatio  float64 `json:"reuse_ratio"`
}

// Diagnostics returns the transport's health report.
func (t *Transport) Diagnostics() (Diagnostics, error) {
	var d Diagnostics
	t.life.RLock()
	if t.freed {
		t.life.RUnlock()
		return d, errClosed
	}
	js := capi.DiagnosticsJSON(t.client)
	t.life.RUnlock()
	err := json.Unmarshal([]byte(js), &d)
	return d, err
}
