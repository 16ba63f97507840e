package wirecore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// do sends method url with o attached; returns the status (0 on error), the body and the error.
func do(t *testing.T, c *http.Client, method, url string, body []byte, o *wirecore.Options) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if o != nil {
		req = req.WithContext(wirecore.WithOptions(req.Context(), *o))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func requestsSeen(t *testing.T) float64 {
	n, _ := counters(t)["requests"].(float64)
	return n
}

// waitFor polls cond every 2 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never saw %s", what)
}

func TestOptionsRateLimitKeySeparatesBuckets(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	tr := newTransport(t, wirecore.Config{RateLimit: wirecore.RateLimitConfig{
		Enabled: true, Scope: "key", Requests: 1, PerMs: 60000, Mode: "fail"}})
	c := &http.Client{Transport: tr}
	url := server.HTTP + "/bytes/1"
	for i, step := range []struct {
		key     string
		limited bool
	}{{"alice", false}, {"alice", true}, {"bob", false}, {"", false}} {
		_, _, err := do(t, c, "GET", url, nil, &wirecore.Options{RateLimitKey: step.key})
		if got := errors.Is(err, wirecore.ErrRateLimited); got != step.limited {
			t.Fatalf("request %d (key %q): err %v, want limited=%v", i, step.key, err, step.limited)
		}
	}
	if n := requestsSeen(t); n != 3 {
		t.Fatalf("server saw %v requests, want 3", n)
	}
}

func TestOptionsIdempotentPostIsRetried(t *testing.T) {
	tr := newTransport(t, wirecore.Config{Retry: wirecore.RetryConfig{BackoffBaseMs: 5, BackoffMaxMs: 5}})
	c := &http.Client{Transport: tr}
	script := `{"path":"/s/p","replies":[{"status":503},{"status":200,"body":"ok"}]}`
	for _, step := range []struct {
		method     string
		idempotent *bool
		status     int
		sent       float64
	}{{"POST", nil, 503, 1}, {"POST", wirecore.Bool(true), 200, 2}, {"GET", wirecore.Bool(false), 503, 1}} {
		control(t, "POST", "/_control/reset", "{}")
		control(t, "POST", "/_control/script", script)
		status, _, err := do(t, c, step.method, server.HTTP+"/s/p", []byte("x"), &wirecore.Options{Idempotent: step.idempotent})
		if err != nil || status != step.status {
			t.Fatalf("%s idempotent=%v: %d %v, want %d", step.method, step.idempotent, status, err, step.status)
		}
		if n := requestsSeen(t); n != step.sent {
			t.Fatalf("%s idempotent=%v: sent %v times, want %v", step.method, step.idempotent, n, step.sent)
		}
	}
}

func TestOptionsPhaseTimeoutsFireWithTheirCodes(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	tr := newTransport(t, wirecore.Config{
		Timeouts: wirecore.TimeoutConfig{ConnectMs: 30000},
		Pool:     wirecore.PoolConfig{MaxConnectionsPerHost: 1},
		Retry:    wirecore.RetryConfig{Enabled: wirecore.Bool(false)}})
	c := &http.Client{Transport: tr}
	_, _, err := do(t, c, "GET", server.HTTP+"/delay/3000", nil, &wirecore.Options{ReadTimeout: 100 * time.Millisecond})
	if !errors.Is(err, wirecore.ErrTimeoutRead) {
		t.Fatalf("read: %v", err)
	}
	_, _, err = do(t, c, "GET", "http://"+server.Blackhole+"/", nil, &wirecore.Options{ConnectTimeout: 100 * time.Millisecond})
	if !errors.Is(err, wirecore.ErrTimeoutConnect) {
		t.Fatalf("connect: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _, _ = do(t, c, "GET", server.HTTP+"/delay/1500", nil, nil)
	}()
	waitFor(t, "the busy request", func() bool { return counters(t)["requests_in_flight"] == 1.0 })
	_, _, err = do(t, c, "GET", server.HTTP+"/bytes/1", nil, &wirecore.Options{PoolTimeout: 50 * time.Millisecond})
	if !errors.Is(err, wirecore.ErrTimeoutPool) {
		t.Fatalf("pool: %v", err)
	}
	wg.Wait()
}

// An explicit priority replaces the caller's Priority header; without one the header goes
// unchanged (the core's one rule, the same in every language).
func TestOptionsPriorityReplacesTheCallersHeader(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	for _, tc := range []struct {
		p      *wirecore.Priority
		header string
		want   string
	}{
		{&wirecore.Priority{Urgency: 0}, "", "u=0"},
		{&wirecore.Priority{Urgency: 7, Incremental: true}, "", "u=7, i"},
		{&wirecore.Priority{Urgency: 1}, "u=6", "u=1"},
		{nil, "u=6, i", "u=6, i"},
		{nil, "", ""},
	} {
		req, _ := http.NewRequest("GET", server.HTTP+"/headers", nil)
		if tc.header != "" {
			req.Header.Set("Priority", tc.header)
		}
		req = req.WithContext(wirecore.WithOptions(req.Context(), wirecore.Options{Priority: tc.p}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Headers map[string]string }
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Headers["priority"] != tc.want {
			t.Errorf("priority %+v, header %q: sent %q, want %q", tc.p, tc.header, got.Headers["priority"], tc.want)
		}
	}
}

func TestParsePriorityTakesTheFormsOfEveryLanguage(t *testing.T) {
	for s, want := range map[string]wirecore.Priority{
		"0": {Urgency: 0}, "7": {Urgency: 7}, "highest": {Urgency: 0}, "High": {Urgency: 1},
		"normal": {Urgency: 3}, "LOW": {Urgency: 5}, "lowest": {Urgency: 7},
		"u=6, i": {Urgency: 6, Incremental: true},
	} {
		got, err := wirecore.ParsePriority(s)
		if err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"8", "u=9", "urgent", "", "1.5"} {
		_, err := wirecore.ParsePriority(s)
		if !errors.Is(err, wirecore.ErrInvalidRequest) || !strings.Contains(err.Error(), "request option priority") {
			t.Errorf("ParsePriority(%q): %v, want invalid_request naming the option", s, err)
		}
	}
}

func TestOptionsPriorityOrdersTheQueue(t *testing.T) {
	tr := newTransport(t, wirecore.Config{Pool: wirecore.PoolConfig{MaxConnectionsPerHost: 1}})
	c := &http.Client{Transport: tr}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	reqs := []struct {
		name, path string
		urgency    int // -1: none
	}{{"busy", "/delay/5000", -1}, {"low-0", "/delay/5", 7}, {"low-1", "/delay/5", 7},
		{"default", "/delay/5", -1}, {"urgent", "/delay/5", 0}}
	for i, r := range reqs {
		o := wirecore.Options{}
		if r.urgency >= 0 {
			o.Priority = &wirecore.Priority{Urgency: uint8(r.urgency)}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := do(t, c, "GET", server.HTTP+r.path, nil, &o); err != nil {
				t.Error(r.name, err)
			}
			mu.Lock()
			order = append(order, r.name)
			mu.Unlock()
		}()
		// The busy request holds the one connection (submission is asynchronous: wait until it
		// does, or a later request could take the connection first); each next one waits
		// behind it. 5 s leaves room for a loaded machine to queue the other four.
		waitFor(t, "the queue to grow", func() bool {
			s, _ := tr.Stats()
			return s.Pool.Active == 1 && s.Pool.Pending == uint64(i)
		})
	}
	wg.Wait()
	want := []string{"busy", "urgent", "default", "low-0", "low-1"}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestOptionsCacheModeAndCacheStatus(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	// The cache section goes as the core's JSON (Config has no typed cache section yet).
	tr, err := wirecore.NewTransportJSON(`{"cache": {"enabled": true}}`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	c := &http.Client{Transport: tr}
	url := server.HTTP + "/cache/go?cache_control=max-age=0&etag=v1"
	get := func(mode wirecore.CacheMode) (int, wirecore.CacheStatus) {
		t.Helper()
		var info wirecore.ResponseInfo
		ctx := wirecore.WithResponseInfo(context.Background(), func(i wirecore.ResponseInfo) { info = i })
		if mode != "" {
			ctx = wirecore.WithOptions(ctx, wirecore.Options{Cache: mode})
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, info.CacheStatus
	}
	for _, tc := range []struct {
		mode   wirecore.CacheMode
		status int
		cache  wirecore.CacheStatus
	}{
		{wirecore.CacheOnlyIfCached, 504, wirecore.CacheMiss},
		{"", 200, wirecore.CacheMiss},
		{wirecore.CacheForceCache, 200, wirecore.CacheStale},
		{wirecore.CacheNoCache, 200, wirecore.CacheRevalidated},
		{wirecore.CacheNoStore, 200, ""},
		{wirecore.CacheReload, 200, wirecore.CacheMiss},
		{wirecore.CacheOnlyIfCached, 200, wirecore.CacheStale},
	} {
		if status, cache := get(tc.mode); status != tc.status || cache != tc.cache {
			t.Errorf("mode %q: %d %q, want %d %q", tc.mode, status, cache, tc.status, tc.cache)
		}
	}
	if n := requestsSeen(t); n != 4 {
		t.Fatalf("the server saw %v requests, want 4", n)
	}
}

func TestOptionsBadValuesFailBeforeIO(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	for _, tc := range []struct {
		o    wirecore.Options
		name string
	}{
		// Bounds are the engine's, named as wirecore::RequestOptions names them.
		{wirecore.Options{Priority: &wirecore.Priority{Urgency: 8}}, "priority urgency must be 0"},
		{wirecore.Options{ReadTimeout: -time.Second}, "ReadTimeout"},
		{wirecore.Options{ConnectTimeout: 366 * 24 * time.Hour}, "connect_timeout"},
		{wirecore.Options{PoolTimeout: 1 << 62}, "pool_timeout"},
		{wirecore.Options{Cache: "sometimes"}, "request option cache must be one of default, no-store"},
	} {
		_, _, err := do(t, c, "GET", server.HTTP+"/bytes/1", nil, &tc.o)
		if !errors.Is(err, wirecore.ErrInvalidRequest) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%+v: %v, want invalid_request naming %s", tc.o, err, tc.name)
		}
	}
	if n := requestsSeen(t); n != 0 {
		t.Fatalf("bad options reached the server %v times", n)
	}
	// A sub-millisecond timeout is a timeout, not "the config's".
	_, _, err := do(t, c, "GET", server.HTTP+"/delay/3000", nil, &wirecore.Options{ReadTimeout: time.Microsecond})
	if !errors.Is(err, wirecore.ErrTimeoutRead) {
		t.Fatalf("1 µs read timeout: %v", err)
	}
}

func TestDiagnostics(t *testing.T) {
	tr := newTransport(t, wirecore.Config{})
	c := &http.Client{Transport: tr}
	if status, _, err := do(t, c, "GET", server.HTTP+"/bytes/1", nil, nil); status != 200 {
		t.Fatal(status, err)
	}
	d, err := tr.Diagnostics()
	if err != nil {
		t.Fatal(err)
	}
	if d.RequestsTotal != 1 || len(d.Origins) != 1 || d.Origins[0].Health == "" || d.Origins[0].Protocol != "h1" {
		t.Fatalf("diagnostics: %+v", d)
	}
	tr.Close()
	if _, err := tr.Diagnostics(); !errors.Is(err, wirecore.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// Every value config.go documents for a string field (`// "a", "b" or "c"`) is accepted by
// the core, and a field typed by a core enum documents all of its values.
func TestDocumentedEnumValuesAreAcceptedByTheCore(t *testing.T) {
	paths := map[string][]string{} // Go struct name → JSON path
	var walk func(ty reflect.Type, path []string)
	walk = func(ty reflect.Type, path []string) {
		paths[ty.Name()] = path
		for i := range ty.NumField() {
			f := ty.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, append(append([]string{}, path...), strings.Split(f.Tag.Get("json"), ",")[0]))
			}
		}
	}
	walk(reflect.TypeFor[wirecore.Config](), nil)
	raw, _ := os.ReadFile("../../core/config.schema.json")
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	defs, _ := schema["$defs"].(map[string]any)
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile(`"([^"]+)"`)
	checked := 0
	ast.Inspect(file, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		for _, f := range st.Fields.List {
			if f.Comment == nil || f.Tag == nil {
				continue
			}
			name := strings.Split(reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("json"), ",")[0]
			_, isSlice := f.Type.(*ast.ArrayType)
			var documented []string
			for _, m := range quoted.FindAllStringSubmatch(f.Comment.Text(), -1) {
				documented = append(documented, m[1])
			}
			for _, v := range documented {
				var value any = v
				if isSlice {
					value = []string{v}
				}
				cfg := map[string]any{name: value}
				p := paths[ts.Name.Name]
				for i := len(p) - 1; i >= 0; i-- {
					cfg = map[string]any{p[i]: cfg}
				}
				js, _ := json.Marshal(cfg)
				tr, err := wirecore.NewTransportJSON(string(js))
				if err != nil {
					t.Errorf("config.go documents %s = %q, which the core rejects: %v", name, v, err)
					continue
				}
				tr.Close()
				checked++
			}
			// The core's schema for the field: a direct reference to an enum lists every value.
			node := map[string]any(schema)
			for _, s := range paths[ts.Name.Name] {
				props, _ := node["properties"].(map[string]any)
				next, _ := props[s].(map[string]any)
				node = resolve(next, defs)
			}
			props, _ := node["properties"].(map[string]any)
			prop, _ := props[name].(map[string]any)
			if ref, _ := prop["$ref"].(string); ref != "" {
				def, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
				variants, _ := def["oneOf"].([]any)
				for _, v := range variants {
					c, _ := v.(map[string]any)["const"].(string)
					if c != "" && !strings.Contains(f.Comment.Text(), `"`+c+`"`) {
						t.Errorf("config.go: %s.%s does not document %q", ts.Name.Name, name, c)
					}
				}
			}
		}
		return true
	})
	if checked < 15 {
		t.Fatalf("checked only %d documented values", checked)
	}
}

// Options.Redirect and MaxRedirects under http.Client (which follows redirects, never the
// engine): wirecore.CheckRedirect applies manual and the hop limit, RedirectError fails in the
// Transport itself; a bad value is refused before any I/O.
func TestOptionsRedirectPolicyUnderHTTPClient(t *testing.T) {
	tr := newTransport(t, wirecore.Config{})
	c := &http.Client{Transport: tr, CheckRedirect: wirecore.CheckRedirect}
	chain := server.HTTP + "/redirect/3"
	for _, step := range []struct {
		name     string
		client   *http.Client
		o        *wirecore.Options
		status   int
		err      error
		requests float64
	}{
		{"default", c, nil, 200, nil, 4},
		{"manual", c, &wirecore.Options{Redirect: wirecore.RedirectManual, MaxRedirects: wirecore.Uint32(5)}, 302, nil, 1},
		{"max 0", c, &wirecore.Options{MaxRedirects: wirecore.Uint32(0)}, 302, nil, 1},
		{"max 2", c, &wirecore.Options{MaxRedirects: wirecore.Uint32(2)}, 0, wirecore.ErrTooManyRedirects, 3},
		{"follow, max 3", c, &wirecore.Options{Redirect: wirecore.RedirectFollow, MaxRedirects: wirecore.Uint32(3)}, 200, nil, 4},
		{"error", c, &wirecore.Options{Redirect: wirecore.RedirectError}, 0, wirecore.ErrTooManyRedirects, 1},
		{"error, plain http.Client", &http.Client{Transport: tr}, &wirecore.Options{Redirect: wirecore.RedirectError}, 0, wirecore.ErrTooManyRedirects, 1},
		{"bad policy", c, &wirecore.Options{Redirect: "sideways"}, 0, wirecore.ErrInvalidRequest, 0},
		{"bad max", c, &wirecore.Options{MaxRedirects: wirecore.Uint32(1001)}, 0, wirecore.ErrInvalidRequest, 0},
	} {
		control(t, "POST", "/_control/reset", "{}")
		status, _, err := do(t, step.client, "GET", chain, nil, step.o)
		if status != step.status || !errors.Is(err, step.err) || (step.err == nil) != (err == nil) {
			t.Fatalf("%s: status %d, error %v; want %d, %v", step.name, status, err, step.status, step.err)
		}
		if got := requestsSeen(t); got != step.requests {
			t.Fatalf("%s: the server saw %v requests, want %v", step.name, got, step.requests)
		}
	}
	var e *wirecore.Error
	_, _, err := do(t, c, "GET", chain, nil, &wirecore.Options{Redirect: "sideways"})
	if !errors.As(err, &e) || !strings.Contains(e.Message, `redirect must be "follow", "manual" or "error", got "sideways"`) {
		t.Fatalf("bad policy: %v", err)
	}
	if s, _ := tr.Stats(); s.RedirectsFollowed != 0 {
		t.Fatalf("the engine followed %d redirects under http.Client", s.RedirectsFollowed)
	}
}

func TestOptionsBalanceKeyKeepsOneEndpoint(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	var eps []wirecore.EndpointConfig
	for _, k := range []string{"http", "http2", "http3"} {
		eps = append(eps, wirecore.EndpointConfig{URL: server.raw[k].(string)})
	}
	tr := newTransport(t, wirecore.Config{Services: map[string]wirecore.ServiceConfig{"svc": {
		Endpoints: eps, Strategy: "consistent_hash", Hash: wirecore.HashKeyConfig{Header: "x-user"}}}})
	c := &http.Client{Transport: tr}
	// The engine checks the key (RequestOptions::validate) before any I/O, naming the option.
	_, _, err := do(t, c, "GET", "http://svc/json", nil, &wirecore.Options{BalanceKey: strings.Repeat("b", 1025)})
	if !errors.Is(err, wirecore.ErrInvalidRequest) || !strings.Contains(err.Error(), "balance_key must be at most 1024 bytes, got 1025") {
		t.Fatalf("long key: %v", err)
	}
	for i := range 8 {
		req, _ := http.NewRequest("GET", "http://svc/json", nil)
		req.Header.Set("x-user", fmt.Sprintf("user-%d", i))
		req = req.WithContext(wirecore.WithOptions(req.Context(), wirecore.Options{BalanceKey: "alice"}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if s, _ := tr.Stats(); s.Pool.Connects != 1 {
		t.Fatalf("one balance key reached %d endpoints, want 1", s.Pool.Connects)
	}
}

// The one rule (wirecore::RequestOptions): no request has a zero timeout; Go's zero Options
// fields are "unset" and keep the config's, never a deadline that fails at once.
func TestOptionsZeroTimeoutsKeepTheConfigs(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	tr := newTransport(t, wirecore.Config{})
	c := &http.Client{Transport: tr}
	status, _, err := do(t, c, "GET", server.HTTP+"/delay/50", nil,
		&wirecore.Options{RateLimitKey: "k", ConnectTimeout: 0, ReadTimeout: 0, PoolTimeout: 0})
	if err != nil || status != 200 {
		t.Fatalf("zero timeouts: %d %v", status, err)
	}
}
