package wirecore

import (
	"context"
	"time"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

// ResponseInfo is what the engine knows about a response beyond http.Response's fields.
type ResponseInfo struct {
	// Reused reports whether the request went over a pooled connection.
	Reused bool
	// Timings are the request's phases (zero for phases a reused connection skipped).
	Timings Timings
	// CacheStatus is where the response came from; "" when the cache took no part (none
	// configured, a request it does not store, CacheNoStore).
	CacheStatus CacheStatus
}

// CacheStatus is where a response came from when the client has a cache.
type CacheStatus string

// The cache statuses, the same words in every language.
const (
	CacheHit         CacheStatus = "hit"         // a fresh stored response; the server was not asked
	CacheMiss        CacheStatus = "miss"        // the server answered (CacheOnlyIfCached: a 504)
	CacheStale       CacheStatus = "stale"       // a stale stored response served unconfirmed
	CacheRevalidated CacheStatus = "revalidated" // a stored response the server confirmed (304)
)

// cacheStatuses are the statuses by their number in wirecore.h (WIRECORE_CACHE_NONE is 0).
var cacheStatuses = [...]CacheStatus{"", CacheHit, CacheMiss, CacheStale, CacheRevalidated}

// Timings are the phases of one request, as the engine measured them.
type Timings struct {
	DNS     time.Duration // name resolution
	Connect time.Duration // TCP connect
	TLS     time.Duration // TLS handshake
	TTFB    time.Duration // send to first response byte
	Total   time.Duration // send to response head
}

type responseInfoKey struct{}

// WithResponseInfo returns a copy of ctx whose requests report each response's ResponseInfo
// to fn before RoundTrip returns the response, as net/http/httptrace's hooks do (an
// http.Client following redirects reports each hop). fn runs on the caller's goroutine and
// must not block. Requests without it pay nothing for the report.
func WithResponseInfo(ctx context.Context, fn func(ResponseInfo)) context.Context {
	return context.WithValue(ctx, responseInfoKey{}, fn)
}

func responseInfoHook(ctx context.Context) func(ResponseInfo) {
	fn, _ := ctx.Value(responseInfoKey{}).(func(ResponseInfo))
	return fn
}

func responseInfo(reused bool, t capi.Timings, cache int) ResponseInfo {
	us := func(n uint64) time.Duration { return time.Duration(n) * time.Microsecond }
	var status CacheStatus
	if cache > 0 && cache < len(cacheStatuses) {
		status = cacheStatuses[cache]
	}
	return ResponseInfo{Reused: reused, Timings: Timings{DNS: us(t.DNS), Connect: us(t.Connect),
		TLS: us(t.TLS), TTFB: us(t.TTFB), Total: us(t.Total)}, CacheStatus: status}
}
