package wirecore_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

const (
	otelTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	otelParent = "00f067aa0ba902b7"
	otelTP     = "00-" + otelTrace + "-" + otelParent + "-01"
)

// sentTraceparent returns the traceparent /echo saw.
func sentTraceparent(t *testing.T, c *http.Client, o *wirecore.Options, header string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", server.raw["http"].(string)+"/echo", nil)
	if header != "" {
		req.Header.Set("traceparent", header)
	}
	if o != nil {
		req = req.WithContext(wirecore.WithOptions(req.Context(), *o))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var echo struct {
		Headers map[string]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	return echo.Headers["traceparent"]
}

func TestOtelTraceparentOptionIsSentUnchangedWhenOff(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	if got := sentTraceparent(t, c, &wirecore.Options{Traceparent: otelTP}, ""); got != otelTP {
		t.Fatalf("sent %q", got)
	}
	_, _, err := do(t, c, "GET", server.raw["http"].(string)+"/echo", nil, &wirecore.Options{Traceparent: "00-abc"})
	if !errors.Is(err, wirecore.ErrInvalidRequest) || !strings.Contains(err.Error(), "traceparent must be a W3C traceparent") {
		t.Fatalf("bad traceparent: %v", err)
	}
}

// The option, or a traceparent header already on the request (as otelhttp.NewTransport sets
// it), is the parent of the span exported to the collector.
func TestOtelSpansAreExportedUnderTheCallersParent(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	tr := newTransport(t, wirecore.Config{Otel: wirecore.OtelConfig{Enabled: true,
		Endpoint: server.raw["http"].(string), ExportIntervalMs: 600_000}})
	c := &http.Client{Transport: tr}
	var sent []string
	sent = append(sent, sentTraceparent(t, c, &wirecore.Options{Traceparent: otelTP}, ""))
	sent = append(sent, sentTraceparent(t, c, nil, otelTP))
	for _, s := range sent {
		if !strings.HasPrefix(s, "00-"+otelTrace+"-") || strings.Contains(s, otelParent) {
			t.Fatalf("sent %q", s)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	var exports []struct {
		Path string `json:"path"`
		Body struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []map[string]any `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"body"`
	}
	if err := json.Unmarshal(control(t, "GET", "/_control/otlp", ""), &exports); err != nil {
		t.Fatal(err)
	}
	var spans []map[string]any
	for _, e := range exports {
		if e.Path != "/v1/traces" {
			continue
		}
		for _, rs := range e.Body.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
	}
	if len(spans) != 2 {
		t.Fatalf("want 2 spans, got %v", spans)
	}
	for i, s := range spans {
		if s["traceId"] != otelTrace || s["parentSpanId"] != otelParent || s["spanId"] != strings.Split(sent[i], "-")[2] {
			t.Fatalf("span %d: %v (sent %s)", i, s, sent[i])
		}
	}
}
