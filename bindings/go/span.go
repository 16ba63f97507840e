package wirecore

import (
	"bytes"
	"encoding/json"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

// Span is a finished client span: the engine's SpanRecord, the same fields in every binding.
// Attributes carry the OpenTelemetry HTTP client semantic conventions' names
// ("http.request.method", "server.address", "server.port", "url.full",
// "http.response.status_code", "error.type", "network.protocol.version" ...), each a string
// or an int64.
type Span struct {
	// TraceID is 32 lowercase hex digits.
	TraceID string `json:"trace_id"`
	// SpanID is 16 lowercase hex digits (the one the request's traceparent carried).
	SpanID string `json:"span_id"`
	// ParentSpanID is the caller's span (Options.Traceparent or a traceparent header on the
	// request), or "".
	ParentSpanID string `json:"parent_span_id"`
	TraceState   string `json:"trace_state"`
	// Name is the method ("GET"), or "HTTP" for one the conventions do not know.
	Name string `json:"name"`
	// Kind is always "client".
	Kind           string `json:"kind"`
	StartUnixNanos uint64 `json:"start_unix_nanos"`
	EndUnixNanos   uint64 `json:"end_unix_nanos"`
	// Status is "unset", or "error" for a failure or a 4xx/5xx answer.
	Status        string         `json:"status"`
	StatusMessage string         `json:"status_message"`
	Attributes    map[string]any `json:"attributes"`
}

// OnSpan calls fn with each finished request's span (Config.Otel.Enabled; also exported to
// Config.Otel.Endpoint when that is set), on a goroutine of the Transport (never on an engine
// thread), one span at a time. Spans wait in a queue of Config.Otel.CallbackQueue; more are
// dropped (Stats().Otel.Dropped), so a slow fn never holds up a request. Close returns once fn
// was handed the spans queued before it. Call it once, before sending; an *Error with code
// invalid_config while Otel is off.
func (t *Transport) OnSpan(fn func(Span)) error {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.freed {
		return errClosed
	}
	if code, msg := capi.ListenSpans(t.client); code != "" {
		return &Error{Code: code, Message: msg}
	}
	t.letters.Add(1)
	go deliver(t.transport, capi.PollSpans, decodeSpan, fn)
	return nil
}

func decodeSpan(j string) Span {
	var s Span
	d := json.NewDecoder(bytes.NewReader([]byte(j)))
	d.UseNumber()
	_ = d.Decode(&s)
	for k, v := range s.Attributes {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				s.Attributes[k] = i
			}
		}
	}
	return s
}
