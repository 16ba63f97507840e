package wirecore_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// Every field of Config has a JSON name the core's committed schema knows.
func TestConfigFieldsAreInTheCoreSchema(t *testing.T) {
	raw, err := os.ReadFile("../../core/config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	defs, _ := schema["$defs"].(map[string]any)
	var walk func(ty reflect.Type, node map[string]any, path string)
	walk = func(ty reflect.Type, node map[string]any, path string) {
		props, _ := node["properties"].(map[string]any)
		for i := range ty.NumField() {
			f := ty.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name == "" {
				continue
			}
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s%s (Go %s) is not in the core schema", path, name, f.Name)
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, resolve(p, defs), path+name+".")
			}
		}
	}
	walk(reflect.TypeFor[wirecore.Config](), schema, "")
}

func resolve(p map[string]any, defs map[string]any) map[string]any {
	ref, _ := p["$ref"].(string)
	if ref == "" {
		if all, ok := p["allOf"].([]any); ok && len(all) > 0 {
			ref, _ = all[0].(map[string]any)["$ref"].(string)
		}
	}
	if d, ok := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any); ok {
		return d
	}
	return p
}

// A Config the core accepts round-trips every section the Go struct sets.
func TestConfigIsAcceptedByTheCore(t *testing.T) {
	cfg := wirecore.Config{
		Timeouts:    wirecore.TimeoutConfig{TotalMs: 5000, ConnectMs: 1000},
		Pool:        wirecore.PoolConfig{MaxIdlePerHost: 4, MaxConnectionsPerHost: 8},
		HTTP2:       wirecore.HTTP2Config{Enabled: wirecore.Bool(false)},
		TCP:         wirecore.TCPConfig{Nodelay: wirecore.Bool(true)},
		TLS:         wirecore.TLSConfig{CAFiles: []string{server.CA}, MinVersion: "1.2"},
		DNS:         wirecore.DNSConfig{CacheSize: 10, UseHostsFile: wirecore.Bool(true)},
		Compression: wirecore.CompressionConfig{Accept: []string{"gzip"}},
		Redirect:    wirecore.RedirectConfig{Max: wirecore.Uint32(0)},
		Limits:      wirecore.LimitsConfig{MaxResponseBodyBytes: 1 << 20},
		Retry:       wirecore.RetryConfig{Enabled: wirecore.Bool(false), Budget: wirecore.RetryBudgetConfig{RatioPercent: 10}},
		Breaker:     wirecore.BreakerConfig{Enabled: true, ConsecutiveFailures: 3},
		RateLimit:   wirecore.RateLimitConfig{Enabled: true, Requests: 1000, PerMs: 1000},
		Concurrency: wirecore.ConcurrencyConfig{Enabled: true, InitialLimit: 10},
		UserAgent:   "go-test/1",
		DefaultHeaders: map[string]string{
			"x-team": "go",
		},
	}
	tr, err := wirecore.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	js, _ := cfg.JSON()
	if !strings.Contains(js, `"redirect":{"max":0}`) || !strings.Contains(js, `"http2":{"enabled":false}`) {
		t.Fatalf("explicit zero values lost: %s", js)
	}
}
