package wirecore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

type scenario struct {
	Name   string                     `json:"name"`
	Config map[string]any             `json:"config"`
	Script []json.RawMessage          `json:"script"`
	Steps  []step                     `json:"steps"`
	Server map[string]json.RawMessage `json:"server"`
	Skip   map[string]string          `json:"skip"`
}

type step struct {
	Concurrency int `json:"concurrency"`
	Request     struct {
		Method    string            `json:"method"`
		URL       string            `json:"url"`
		Headers   map[string]string `json:"headers"`
		Body      *string           `json:"body"`
		TimeoutMs int64             `json:"timeout_ms"`
	} `json:"request"`
	Outcome map[string]any `json:"outcome"`
}

// TestScenarios replays tests/scenarios through Transport.RoundTrip (not http.Client, whose
// own redirect handling would hide the engine's), on a Transport that keeps the engine's
// redirects on (NewTransportEngineRedirects, test-only: a Transport leaves them to http.Client).
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("../../tests/scenarios/*.json")
	if len(files) == 0 {
		t.Fatal("no scenarios found")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) { runScenario(t, f, name) })
	}
}

func substitute(raw string) string {
	for k, v := range server.raw {
		if s, ok := v.(string); ok {
			raw = strings.ReplaceAll(raw, "{"+k+"}", s)
		}
	}
	return raw
}

func runScenario(t *testing.T, path, name string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc scenario
	if err := json.Unmarshal([]byte(substitute(string(raw))), &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Name != name {
		t.Fatalf("name %q is not the file name", sc.Name)
	}
	if reason, ok := sc.Skip["go"]; ok {
		t.Skip(reason)
	}
	control(t, "POST", "/_control/reset", "")
	for _, s := range sc.Script {
		control(t, "POST", "/_control/script", string(s))
	}
	if sc.Config == nil {
		sc.Config = map[string]any{}
	}
	if _, ok := sc.Config["tls"]; !ok {
		sc.Config["tls"] = map[string]any{"ca_files": []string{server.CA}}
	}
	cfg, _ := json.Marshal(sc.Config)
	tr, err := wirecore.NewTransportEngineRedirects(string(cfg))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	for i, st := range sc.Steps {
		n := max(st.Concurrency, 1)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for k := range n {
			wg.Go(func() { errs[k] = runStep(tr, st) })
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				tr.Close()
				t.Fatalf("step %d: %v", i, e)
			}
		}
	}
	tr.Close()
	if len(sc.Server) > 0 {
		checkServer(t, sc.Server)
	}
}

func runStep(tr *wirecore.Transport, st step) error {
	var body io.Reader
	if st.Request.Body != nil {
		body = strings.NewReader(*st.Request.Body)
	}
	method := st.Request.Method
	if method == "" {
		method = "GET"
	}
	req, err := http.NewRequest(method, st.Request.URL, body)
	if err != nil {
		// Go refuses the URL before the engine sees it; the engine's code is still expected.
		if st.Outcome["error"] == "invalid_url" {
			return nil
		}
		return err
	}
	for k, v := range st.Request.Headers {
		req.Header.Add(k, v)
	}
	if st.Request.TimeoutMs > 0 {
		ctx, cancel := contextWithTimeout(time.Duration(st.Request.TimeoutMs) * time.Millisecond)
		defer cancel()
		req = req.WithContext(ctx)
	}
	resp, err := tr.RoundTrip(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	out := st.Outcome
	if want, ok := out["error"].(string); ok {
		if err == nil {
			return fmt.Errorf("want error %s, got status %d", want, resp.StatusCode)
		}
		var we *wirecore.Error
		if !errors.As(err, &we) || we.Code != want || !errors.Is(err, wirecore.Sentinel(want)) {
			return fmt.Errorf("want error %s, got %v", want, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("unexpected error %w", err)
	}
	if s, ok := out["status"].(float64); ok && int(s) != resp.StatusCode {
		return fmt.Errorf("want status %v, got %d", s, resp.StatusCode)
	}
	if v, ok := out["version"].(string); ok && v != resp.Proto {
		return fmt.Errorf("want version %s, got %s", v, resp.Proto)
	}
	if v, ok := out["body"].(string); ok && v != string(b) {
		return fmt.Errorf("want body %q, got %q", v, b)
	}
	if v, ok := out["body_contains"].(string); ok && !bytes.Contains(b, []byte(v)) {
		return fmt.Errorf("body lacks %q: %.200s", v, b)
	}
	if v, ok := out["body_len"].(float64); ok && int(v) != len(b) {
		return fmt.Errorf("want body_len %v, got %d", v, len(b))
	}
	if v, ok := out["json"]; ok {
		var have any
		if err := json.Unmarshal(b, &have); err != nil || !subset(v, have) {
			return fmt.Errorf("JSON %.300s does not contain %v", b, v)
		}
	}
	if ps, ok := out["json_absent"].([]any); ok {
		var have any
		if err := json.Unmarshal(b, &have); err != nil {
			return fmt.Errorf("body is not JSON: %v", err)
		}
		for _, p := range ps {
			if hasPath(have, p.(string)) {
				return fmt.Errorf("%s should be absent: %.300s", p, b)
			}
		}
	}
	if hs, ok := out["headers"].(map[string]any); ok {
		for k, v := range hs {
			if got := resp.Header.Values(k); len(got) == 0 || got[0] != v {
				return fmt.Errorf("header %s: want %v, got %v", k, v, got)
			}
		}
	}
	if hs, ok := out["absent_headers"].([]any); ok {
		for _, k := range hs {
			if resp.Header.Get(k.(string)) != "" {
				return fmt.Errorf("header %s should be absent", k)
			}
		}
	}
	if _, ok := out["reused"]; ok {
		// Not observable through http.Response; the server counters of the scenario cover it.
		_ = ok
	}
	return nil
}

func subset(want, have any) bool {
	if w, ok := want.(map[string]any); ok {
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, h[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, have)
}

func checkServer(t *testing.T, want map[string]json.RawMessage) {
	var last string
	for range 40 {
		have := counters(t)
		last = ""
		for k, raw := range want {
			got, _ := have[k].(float64)
			var exact float64
			if json.Unmarshal(raw, &exact) == nil {
				if got != exact {
					last = fmt.Sprintf("server %s: want %v, got %v", k, exact, got)
				}
				continue
			}
			var r struct{ Min, Max *float64 }
			_ = json.Unmarshal(raw, &r)
			if (r.Min != nil && got < *r.Min) || (r.Max != nil && got > *r.Max) {
				last = fmt.Sprintf("server %s: %v not in %s", k, got, raw)
			}
		}
		if last == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(last)
}

// hasPath reports whether the dotted path a.b.c names a key of the JSON document.
func hasPath(doc any, dotted string) bool {
	for _, key := range strings.Split(dotted, ".") {
		m, ok := doc.(map[string]any)
		if !ok {
			return false
		}
		if doc, ok = m[key]; !ok {
			return false
		}
	}
	return true
}
