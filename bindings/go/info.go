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
}

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

func responseInfo(reused bool, t capi.Timings) ResponseInfo {
	us := func(n uint64) time.Duration { return time.Duration(n) * time.Microsecond }
	return ResponseInfo{Reused: reused, Timings: Timings{DNS: us(t.DNS), Connect: us(t.Connect),
		TLS: us(t.TLS), TTFB: us(t.TTFB), Total: us(t.Total)}}
}
