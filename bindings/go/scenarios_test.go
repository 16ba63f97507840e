package wirecore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// Every key a scenario file may use, per object; any other key fails the file.
var (
	topKeys     = []string{"name", "description", "config", "script", "dns", "steps", "stats", "server", "skip"}
	stepKeys    = []string{"request", "outcome", "concurrency", "dns", "wait_ms"}
	requestKeys = []string{"method", "url", "headers", "body", "timeout_ms", "priority", "redirect", "max_redirects",
		"cache", "balance_key", "traceparent", "tracestate"}
	outcomeKeys = []string{"status", "error", "body", "body_contains", "body_len", "json", "json_absent",
		"headers", "absent_headers", "version", "reused", "cache_status", "any_of"}
	scriptKeys = []string{"path", "replies"}
	dnsKeys    = []string{"name", "ips", "ttl", "fail", "remove", "negative_ttl"}
	rangeKeys  = []string{"min", "max"}
	languages  = []string{"rust", "python", "node", "go", "c"}
)

// TestScenarios replays tests/scenarios through Transport.RoundTrip (not http.Client, whose
// own redirect handling would hide the engine's), on a Transport that keeps the engine's
// redirects on (NewTransportEngineRedirects, test-only: a Transport leaves them to http.Client).
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("../../tests/scenarios/*.json")
	if len(files) < 80 {
		t.Fatalf("%d scenarios found, want at least 80", len(files))
	}
	passed := 0
	var skipped []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			if reason := runScenario(t, f, name); reason != "" {
				skipped = append(skipped, name+": "+reason)
				t.Skip(reason)
			}
			if !t.Failed() {
				passed++
			}
		})
	}
	// `go test` shows it (and each skip's reason) with -v or when the package fails.
	t.Logf("scenarios (go): %d passed, %d skipped (%s)", passed, len(skipped), strings.Join(skipped, "; "))
}

func substitute(raw string) string {
	for k, v := range server.raw {
		if s, ok := v.(string); ok {
			raw = strings.ReplaceAll(raw, "{"+k+"}", s)
		}
	}
	if u, err := url.Parse(server.HTTP); err == nil {
		raw = strings.ReplaceAll(raw, "{http_port}", u.Port())
	}
	return raw
}

type object = map[string]any

func keys(v any, allowed []string, what string) error {
	if v == nil {
		return nil
	}
	m, ok := v.(object)
	if !ok {
		return fmt.Errorf("%s must be an object", what)
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("unknown key %s.%s", what, k)
		}
	}
	return nil
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// validate checks every key of the file before anything runs.
func validate(sc object) error {
	check := keys
	if err := check(sc, topKeys, "scenario"); err != nil {
		return err
	}
	if err := check(sc["skip"], languages, "skip"); err != nil {
		return err
	}
	for _, e := range list(sc["script"]) {
		if err := check(e, scriptKeys, "script[]"); err != nil {
			return err
		}
	}
	for _, e := range list(sc["dns"]) {
		if err := check(e, dnsKeys, "dns[]"); err != nil {
			return err
		}
	}
	if srv, ok := sc["server"].(object); ok {
		for k, v := range srv {
			if _, isObj := v.(object); isObj {
				if err := check(v, rangeKeys, "server."+k); err != nil {
					return err
				}
			}
		}
	}
	steps := list(sc["steps"])
	if len(steps) == 0 {
		return errors.New("no steps")
	}
	for i, s := range steps {
		where := fmt.Sprintf("steps[%d]", i)
		if err := check(s, stepKeys, where); err != nil {
			return err
		}
		st := s.(object)
		for _, e := range list(st["dns"]) {
			if err := check(e, dnsKeys, where+".dns[]"); err != nil {
				return err
			}
		}
		if (st["request"] == nil) != (st["outcome"] == nil) {
			return fmt.Errorf("%s: request and outcome go together", where)
		}
		if err := check(st["request"], requestKeys, where+".request"); err != nil {
			return err
		}
		if err := check(st["outcome"], outcomeKeys, where+".outcome"); err != nil {
			return err
		}
		out, _ := st["outcome"].(object)
		for _, alt := range list(out["any_of"]) {
			if err := check(alt, outcomeKeys[:len(outcomeKeys)-1], where+".outcome.any_of[]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// runScenario runs one file; it returns the skip reason when the file skips Go.
func runScenario(t *testing.T, path, name string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc object
	if err := json.Unmarshal([]byte(substitute(string(raw))), &sc); err != nil {
		t.Fatal(err)
	}
	if sc["name"] != name {
		t.Fatalf("name %v is not the file name", sc["name"])
	}
	if err := validate(sc); err != nil {
		t.Fatal(err)
	}
	if skip, ok := sc["skip"].(object); ok {
		if reason, ok := skip["go"]; ok {
			return fmt.Sprint(reason)
		}
	}
	control(t, "POST", "/_control/reset", "")
	for _, s := range list(sc["script"]) {
		b, _ := json.Marshal(s)
		control(t, "POST", "/_control/script", string(b))
	}
	setDNS(t, sc["dns"])
	cfgMap, _ := sc["config"].(object)
	if cfgMap == nil {
		cfgMap = object{}
	}
	if _, ok := cfgMap["tls"]; !ok {
		cfgMap["tls"] = object{"ca_files": []string{server.CA}}
	}
	cfg, _ := json.Marshal(cfgMap)
	tr, err := wirecore.NewTransportEngineRedirects(string(cfg))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := runSteps(t, tr, sc); err != nil {
		tr.Close()
		t.Fatal(err)
	}
	tr.Close()
	if srv, ok := sc["server"].(object); ok {
		checkServer(t, srv)
	}
	return ""
}

func setDNS(t *testing.T, entries any) {
	for _, d := range list(entries) {
		b, _ := json.Marshal(d)
		control(t, "POST", "/_control/dns", string(b))
	}
}

func runSteps(t *testing.T, tr *wirecore.Transport, sc object) error {
	for i, s := range list(sc["steps"]) {
		st := s.(object)
		setDNS(t, st["dns"])
		if ms, ok := st["wait_ms"].(float64); ok {
			// Time passing is the behaviour under test here (a breaker's open time).
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		if st["request"] == nil {
			continue
		}
		n := 1
		if c, ok := st["concurrency"].(float64); ok {
			n = max(int(c), 1)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for k := range n {
			wg.Go(func() { errs[k] = runStep(tr, st["request"].(object), st["outcome"].(object)) })
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				return fmt.Errorf("step %d: %w", i, e)
			}
		}
	}
	if want, ok := sc["stats"]; ok {
		s, err := tr.Stats()
		if err != nil {
			return err
		}
		// The typed Stats as JSON: a field Go's Stats lacks fails the check.
		b, _ := json.Marshal(s)
		var have any
		_ = json.Unmarshal(b, &have)
		if err := checkStats(want, have, ""); err != nil {
			return err
		}
	}
	return nil
}

// result is what one request ended with.
type result struct {
	resp *http.Response
	body []byte
	info wirecore.ResponseInfo
	err  error
}

func newRequest(rq object) (*http.Request, error) {
	var body io.Reader
	if b, ok := rq["body"].(string); ok {
		body = strings.NewReader(b)
	}
	method, _ := rq["method"].(string)
	if method == "" {
		method = "GET"
	}
	raw, _ := rq["url"].(string)
	req, err := http.NewRequest(method, raw, body)
	if err != nil {
		// Go's URL parser refuses some URLs the engine must judge itself: hand the engine the
		// text as it is (an opaque URL is written back verbatim).
		if req, err = http.NewRequest(method, "http://placeholder/", body); err != nil {
			return nil, err
		}
		req.URL, req.Host = &url.URL{Opaque: raw}, ""
	}
	if hs, ok := rq["headers"].(object); ok {
		for k, v := range hs {
			req.Header.Add(k, fmt.Sprint(v))
		}
	}
	return req, nil
}

func send(tr *wirecore.Transport, rq object) result {
	req, err := newRequest(rq)
	if err != nil {
		return result{err: err}
	}
	var r result
	ctx := wirecore.WithResponseInfo(context.Background(), func(i wirecore.ResponseInfo) { r.info = i })
	var o wirecore.Options
	if s, ok := rq["priority"].(string); ok {
		p, err := wirecore.ParsePriority(s)
		if err != nil {
			return result{err: err}
		}
		o.Priority = &p
	}
	if s, ok := rq["redirect"].(string); ok {
		o.Redirect = wirecore.RedirectPolicy(s)
	}
	if n, ok := rq["max_redirects"].(float64); ok {
		o.MaxRedirects = wirecore.Uint32(uint32(n))
	}
	if s, ok := rq["cache"].(string); ok {
		o.Cache = wirecore.CacheMode(s)
	}
	if k, ok := rq["balance_key"].(string); ok {
		o.BalanceKey = k
	}
	if t, ok := rq["traceparent"].(string); ok {
		o.Traceparent = t
	}
	if t, ok := rq["tracestate"].(string); ok {
		o.Tracestate = t
	}
	if o != (wirecore.Options{}) {
		ctx = wirecore.WithOptions(ctx, o)
	}
	if ms, ok := rq["timeout_ms"].(float64); ok && ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	r.resp, r.err = tr.RoundTrip(req.WithContext(ctx))
	if r.err == nil {
		r.body, r.err = io.ReadAll(r.resp.Body)
		r.resp.Body.Close()
	}
	return r
}

func runStep(tr *wirecore.Transport, rq, out object) error {
	return check(out, send(tr, rq))
}

func check(out object, r result) error {
	if alts, ok := out["any_of"]; ok {
		var why []string
		for _, alt := range list(alts) {
			err := check(alt.(object), r)
			if err == nil {
				return nil
			}
			why = append(why, err.Error())
		}
		return fmt.Errorf("no outcome of any_of matched: %s", strings.Join(why, "; "))
	}
	if want, ok := out["error"].(string); ok {
		if r.err == nil {
			return fmt.Errorf("want error %s, got status %d", want, r.resp.StatusCode)
		}
		var we *wirecore.Error
		if !errors.As(r.err, &we) || we.Code != want || !errors.Is(r.err, wirecore.Sentinel(want)) {
			return fmt.Errorf("want error %s, got %v", want, r.err)
		}
		return nil
	}
	if r.err != nil {
		return fmt.Errorf("unexpected error %w", r.err)
	}
	resp, b := r.resp, r.body
	if s, ok := out["status"].(float64); ok && int(s) != resp.StatusCode {
		return fmt.Errorf("want status %v, got %d", s, resp.StatusCode)
	}
	if v, ok := out["version"].(string); ok && v != resp.Proto {
		return fmt.Errorf("want version %s, got %s", v, resp.Proto)
	}
	if v, ok := out["reused"].(bool); ok && v != r.info.Reused {
		return fmt.Errorf("want reused=%v, got %v", v, r.info.Reused)
	}
	if v, ok := out["cache_status"].(string); ok {
		got := string(r.info.CacheStatus)
		if got == "" {
			got = "none"
		}
		if v != got {
			return fmt.Errorf("want cache_status %s, got %s", v, got)
		}
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
	if ps, ok := out["json_absent"]; ok {
		var have any
		if err := json.Unmarshal(b, &have); err != nil {
			return fmt.Errorf("body is not JSON: %v", err)
		}
		for _, p := range list(ps) {
			if hasPath(have, fmt.Sprint(p)) {
				return fmt.Errorf("%s should be absent: %.300s", p, b)
			}
		}
	}
	if hs, ok := out["headers"].(object); ok {
		for k, v := range hs {
			if got := resp.Header.Values(k); len(got) == 0 || got[0] != v {
				return fmt.Errorf("header %s: want %v, got %v", k, v, got)
			}
		}
	}
	for _, k := range list(out["absent_headers"]) {
		if len(resp.Header.Values(fmt.Sprint(k))) != 0 {
			return fmt.Errorf("header %s should be absent", k)
		}
	}
	return nil
}

func subset(want, have any) bool {
	if w, ok := want.(object); ok {
		h, ok := have.(object)
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

// isRange reports whether v is an object whose keys are all min/max.
func isRange(v any) bool {
	m, ok := v.(object)
	if !ok || len(m) == 0 {
		return false
	}
	for k := range m {
		if !slices.Contains(rangeKeys, k) {
			return false
		}
	}
	return true
}

func inRange(r object, got float64) bool {
	lo, hasLo := r["min"].(float64)
	hi, hasHi := r["max"].(float64)
	return (!hasLo || got >= lo) && (!hasHi || got <= hi)
}

// checkStats matches the `stats` outcome: every key given must exist; leaves compare exactly
// or by range.
func checkStats(want, have any, path string) error {
	if isRange(want) {
		got, ok := have.(float64)
		if !ok {
			return fmt.Errorf("stats %s: %v is not a number", path, have)
		}
		if !inRange(want.(object), got) {
			return fmt.Errorf("stats %s: %v not in %v", path, got, want)
		}
		return nil
	}
	if w, ok := want.(object); ok {
		h, ok := have.(object)
		if !ok {
			return fmt.Errorf("stats %s: expected an object, got %v", path, have)
		}
		for k, v := range w {
			p := k
			if path != "" {
				p = path + "." + k
			}
			hv, ok := h[k]
			if !ok {
				return fmt.Errorf("stats %s: no such field", p)
			}
			if err := checkStats(v, hv, p); err != nil {
				return err
			}
		}
		return nil
	}
	if !reflect.DeepEqual(want, have) {
		return fmt.Errorf("stats %s: want %v, got %v", path, want, have)
	}
	return nil
}

func checkServer(t *testing.T, want object) {
	have := counters(t)
	for k := range want {
		if _, ok := have[k]; !ok {
			t.Fatalf("unknown server counter %s", k)
		}
	}
	// Closes and cancellations reach the server after the client sees them: poll briefly.
	var last string
	for range 60 {
		last = ""
		for k, w := range want {
			got, _ := have[k].(float64)
			if r, ok := w.(object); ok {
				if !inRange(r, got) {
					last = fmt.Sprintf("server %s: %v not in %v", k, got, r)
				}
			} else if w != got {
				last = fmt.Sprintf("server %s: want %v, got %v", k, w, got)
			}
		}
		if last == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
		have = counters(t)
	}
	t.Fatal(last)
}

// hasPath reports whether the dotted path a.b.c names a key of the JSON document.
func hasPath(doc any, dotted string) bool {
	for _, key := range strings.Split(dotted, ".") {
		m, ok := doc.(object)
		if !ok {
			return false
		}
		if doc, ok = m[key]; !ok {
			return false
		}
	}
	return true
}
