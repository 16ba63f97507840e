package wirecore_test

// net/http's RoundTripper contract and the Transport's lifetime rules (issue 11, items 6, 7, 11).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// http.Client follows redirects (CheckRedirect, resp.Request of the last hop), never the engine.
func TestHTTPClientFollowsRedirectsNotTheEngine(t *testing.T) {
	target := server.HTTPS + "/json"
	start := server.HTTP + "/redirect-to?status=302&url=" + url.QueryEscape(target)
	transports := map[string]*wirecore.Transport{
		"default":    newTransport(t, wirecore.Config{}),
		"Max 5":      newTransport(t, wirecore.Config{Redirect: wirecore.RedirectConfig{Max: wirecore.Uint32(5)}}),
		"JSON max 3": nil,
	}
	js, _ := json.Marshal(map[string]any{"redirect": map[string]any{"max": 3}, "tls": map[string]any{"ca_files": []string{server.CA}}})
	tr, err := wirecore.NewTransportJSON(string(js))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	transports["JSON max 3"] = tr
	for name, tr := range transports {
		var via []string
		c := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, prev []*http.Request) error {
			via = append(via, prev[len(prev)-1].URL.String()+" -> "+req.URL.String())
			return nil
		}}
		resp, b := get(t, c, start)
		if resp.StatusCode != 200 || !json.Valid(b) {
			t.Fatalf("%s: %d %q", name, resp.StatusCode, b)
		}
		if len(via) != 1 || resp.Request.URL.String() != target || resp.TLS == nil {
			t.Fatalf("%s: CheckRedirect calls %q, last hop %s (want %s), TLS %v", name, via, resp.Request.URL, target, resp.TLS)
		}
		// Stopping at the redirect hands back the 302 itself.
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, _ = get(t, c, start)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != target {
			t.Fatalf("%s: ErrUseLastResponse gave %d %v", name, resp.StatusCode, resp.Header)
		}
	}
}

// Read and Close racing on one body: every Read returns, every id is released, no goroutine
// is left waiting for a completion that went to another.
func TestBodyReadAndCloseRace(t *testing.T) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	tr := newTransport(t, wirecore.Config{Pool: wirecore.PoolConfig{MaxConnectionsPerHost: 64}})
	c := &http.Client{Transport: tr}
	const n = 100
	var wg sync.WaitGroup
	var hung, failed atomic.Int64
	for i := range n {
		wg.Go(func() {
			// Streamed (chunked) bodies, and a few that arrive whole with the head.
			path := "/stream?chunks=40&size=100&delay_ms=10"
			if i%10 == 0 {
				path = "/bytes/100"
			}
			resp, err := c.Get(server.HTTP + path)
			if err != nil {
				failed.Add(1)
				return
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				io.Copy(io.Discard, resp.Body)
			}()
			time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond * time.Duration(i%2))
			resp.Body.Close()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				hung.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	if hung.Load() > 0 {
		t.Fatalf("%d of %d reads never returned after Close", hung.Load(), n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := tr.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.RequestsInFlight == 0 && s.Pool.Active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the race: %d in flight, pool %+v", s.RequestsInFlight, s.Pool)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every id was released: Close does not wait out its deadline for a lost completion.
	start := time.Now()
	tr.Close()
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Close waited %v for ids nobody releases", d)
	}
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Transport nobody references any more keeps its engine while a body is being read.
func TestOpenBodyKeepsAForgottenTransportAlive(t *testing.T) {
	var wp weak.Pointer[wirecore.Transport]
	resp := func() *http.Response {
		tr, err := wirecore.NewTransport(wirecore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		wp = weak.Make(tr)
		// Over 64 KiB: streamed, not prefetched with the head.
		resp, err := (&http.Client{Transport: tr}).Get(server.HTTP + "/drip?bytes=100000&chunks=25&delay_ms=40")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}()
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	total, collected := 0, false
	for range 10_000 {
		runtime.GC()
		if wp.Value() == nil {
			collected = true
		}
		n, err := resp.Body.Read(buf)
		total += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes (Transport collected: %v): %v", total, collected, err)
		}
	}
	if total != 100000 {
		t.Fatalf("read %d bytes, want 100000", total)
	}
	if !collected {
		t.Fatal("the Transport was never collected: the test proved nothing")
	}
}

// closeRecorder is a request body that records Close; with block set, Read waits for Close
// (a pipe nobody writes to).
type closeRecorder struct {
	r      io.Reader
	err    error
	block  chan struct{}
	once   sync.Once
	closed atomic.Bool
}

func (b *closeRecorder) Read(p []byte) (int, error) {
	if b.block != nil {
		<-b.block
		return 0, errors.New("closed")
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.r.Read(p)
}

func (b *closeRecorder) Close() error {
	b.closed.Store(true)
	b.once.Do(func() {
		if b.block != nil {
			close(b.block)
		}
	})
	return nil
}

// RoundTrip closes the request body on every failure path (net/http's contract), possibly
// after it returns.
func TestRequestBodyClosedOnEveryFailure(t *testing.T) {
	tr := newTransport(t, wirecore.Config{})
	closedTr := newTransport(t, wirecore.Config{})
	closedTr.Close()
	small := func() *closeRecorder { return &closeRecorder{r: strings.NewReader("hello")} }
	blocking := func() *closeRecorder { return &closeRecorder{block: make(chan struct{})} }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	type tc struct {
		name   string
		tr     *wirecore.Transport
		method string
		url    string
		body   *closeRecorder
		length int64
		header string
		ctx    func() (context.Context, context.CancelFunc)
	}
	cases := []tc{
		{name: "NUL in a header", url: server.HTTP + "/echo", body: small(), length: 5, header: "a\x00b"},
		{name: "context already cancelled", url: server.HTTP + "/echo", body: small(), length: 5,
			ctx: func() (context.Context, context.CancelFunc) { return cancelled, func() {} }},
		{name: "closed transport", tr: closedTr, url: server.HTTP + "/echo", body: small(), length: 5},
		{name: "unsupported scheme", url: "ftp://127.0.0.1/x", body: small(), length: 5},
		{name: "body read error", url: server.HTTP + "/echo", body: &closeRecorder{err: errors.New("disk on fire")}, length: 5},
		{name: "connection refused, buffered body", url: "http://127.0.0.1:1/", body: small(), length: 5},
		{name: "connection refused, streamed body", url: "http://127.0.0.1:1/", body: blocking()},
		{name: "connection refused, streamed body of known length", url: "http://127.0.0.1:1/", body: blocking(), length: 4 << 20},
		{name: "cancelled in flight, streamed body", url: server.HTTP + "/hang", body: blocking(),
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			}},
		{name: "deadline in flight, streamed body", url: server.HTTP + "/hang", body: blocking(),
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 150*time.Millisecond)
			}},
	}
	for _, c := range cases {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if c.ctx != nil {
			ctx, cancel = c.ctx()
		}
		req, err := http.NewRequestWithContext(ctx, "POST", c.url, c.body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = c.length
		if c.header != "" {
			req.Header.Set("X-Bad", c.header)
		}
		rt := c.tr
		if rt == nil {
			rt = tr
		}
		resp, err := rt.RoundTrip(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: no error (status %d)", c.name, resp.StatusCode)
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for !c.body.closed.Load() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !c.body.closed.Load() {
			t.Errorf("%s (%v): the request body was never closed", c.name, err)
		}
	}
}

type echoed struct {
	Method  string         `json:"method"`
	BodyLen int            `json:"body_len"`
	Headers map[string]any `json:"headers"`
}

func echo(t *testing.T, c *http.Client, url string, body io.Reader) echoed {
	t.Helper()
	resp, err := c.Post(url, "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

// A body of known length over the 1 MiB buffering limit goes out with Content-Length, not
// chunked; empty bodies are never chunked either.
func TestKnownLengthBodiesAreNotChunked(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	big := bytes.Repeat([]byte("w"), 2<<20)
	for _, base := range []string{server.HTTP, server.HTTPS} {
		e := echo(t, c, base+"/echo", bytes.NewReader(big))
		if e.BodyLen != len(big) || e.Headers["content-length"] != "2097152" || e.Headers["transfer-encoding"] != nil {
			t.Fatalf("%s, 2 MiB: body_len %d, headers %v", base, e.BodyLen, e.Headers)
		}
		for name, body := range map[string]io.Reader{"NoBody": http.NoBody, "empty bytes.Reader": bytes.NewReader(nil)} {
			e := echo(t, c, base+"/echo", body)
			if cl := e.Headers["content-length"]; e.BodyLen != 0 || e.Headers["transfer-encoding"] != nil || (cl != nil && cl != "0") {
				t.Fatalf("%s, %s: body_len %d, headers %v", base, name, e.BodyLen, e.Headers)
			}
		}
	}
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// 200 Transports used once and dropped without Close give back every socket and pipe.
func TestDroppedTransportsReturnTheirFDs(t *testing.T) {
	cfg := wirecore.Config{TLS: wirecore.TLSConfig{CAFiles: []string{server.CA}}}
	use := func() {
		tr, err := wirecore.NewTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Get(server.HTTP + "/bytes/100")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	use() // the engine's runtime and the process's own fds exist from here on
	for range 5 {
		runtime.GC()
	}
	start := openFDs()
	for range 200 {
		use()
	}
	deadline := time.Now().Add(2 * time.Second)
	peak := openFDs()
	for {
		runtime.GC()
		now := openFDs()
		if now <= start+5 {
			t.Logf("fds: %d at start, %d after the loop, %d now", start, peak, now)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fds: %d at start, %d after the loop, still %d after 2 s", start, peak, now)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Huge timeouts mean "no limit worth having", never a hang or an abort.
func TestHugeTimeoutsStillAnswer(t *testing.T) {
	within := func(name string, f func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s: no answer after 20 s", name)
		}
	}
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	within("context.WithTimeout(MaxInt64)", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), math.MaxInt64)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", server.HTTP+"/json", nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != 200 {
			return errors.Join(err, errors.New(resp.Status))
		}
		return nil
	})
	within("timeouts of MaxUint64 ms", func() error {
		tr, err := wirecore.NewTransport(wirecore.Config{Timeouts: wirecore.TimeoutConfig{
			TotalMs: math.MaxUint64, ReadIdleMs: math.MaxUint64, ConnectMs: math.MaxUint64,
		}})
		if errors.Is(err, wirecore.ErrInvalidConfig) {
			t.Logf("refused up front: %v", err)
			return nil // naming the field: also fine
		}
		if err != nil {
			return err
		}
		defer tr.Close()
		resp, err := (&http.Client{Transport: tr}).Get(server.HTTP + "/json")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	})
}

// resp.TLS describes the handshake, for new and reused connections, h2 and HTTP/1.1.
func TestResponseTLSConnectionState(t *testing.T) {
	pem, err := os.ReadFile(server.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for _, tc := range []struct {
		name, alpn string
		cfg        wirecore.Config
	}{
		{"h2", "h2", wirecore.Config{}},
		{"http/1.1", "http/1.1", wirecore.Config{HTTP2: wirecore.HTTP2Config{Enabled: wirecore.Bool(false)}}},
	} {
		c := &http.Client{Transport: newTransport(t, tc.cfg)}
		var first *tls.ConnectionState
		for round, path := range []string{"/json", "/bytes/200000", "/json"} {
			resp, _ := get(t, c, server.HTTPS+path)
			s := resp.TLS
			if s == nil {
				t.Fatalf("%s round %d: resp.TLS is nil", tc.name, round)
			}
			if !s.HandshakeComplete || s.Version < tls.VersionTLS12 || s.NegotiatedProtocol != tc.alpn ||
				s.ServerName != "localhost" || len(s.PeerCertificates) == 0 ||
				strings.HasPrefix(tls.CipherSuiteName(s.CipherSuite), "0x") {
				t.Fatalf("%s round %d: %+v (cipher %s)", tc.name, round, s, tls.CipherSuiteName(s.CipherSuite))
			}
			if _, err := s.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
				t.Fatalf("%s: the leaf does not verify: %v", tc.name, err)
			}
			if first == nil {
				first = s
			} else if s.Version != first.Version || s.CipherSuite != first.CipherSuite ||
				!s.PeerCertificates[0].Equal(first.PeerCertificates[0]) {
				t.Fatalf("%s: the reused connection reports %+v, the first %+v", tc.name, s, first)
			}
		}
		if resp, _ := get(t, c, server.HTTP+"/json"); resp.TLS != nil {
			t.Fatalf("%s: plain HTTP has resp.TLS %+v", tc.name, resp.TLS)
		}
	}
}

// http.Client follows redirects, so the Transport keeps the client's default headers (often
// credentials) with their origin: none on a hop after the chain left it, even back home.
func TestDefaultHeadersStayWithTheirOrigin(t *testing.T) {
	tr := newTransport(t, wirecore.Config{DefaultHeaders: map[string]string{"Authorization": "Bearer SECRET", "X-Team": "blue"}})
	c := &http.Client{Transport: tr}
	home := server.HTTP + "/headers"
	hop := func(base, to string) string { return base + "/redirect-to?status=302&url=" + url.QueryEscape(to) }
	for _, tc := range []struct {
		name string
		url  string
		sent bool
	}{
		{"no redirect", home, true},
		{"same-origin redirect", hop(server.HTTP, home), true},
		{"cross-origin redirect", hop(server.HTTP, server.HTTPS+"/headers"), false},
		{"out and back home", hop(server.HTTP, hop(server.HTTPS, home)), false},
	} {
		resp, b := get(t, c, tc.url)
		var got struct {
			Headers map[string]any `json:"headers"`
		}
		if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
		_, auth := got.Headers["authorization"]
		_, team := got.Headers["x-team"]
		if auth != tc.sent || team != tc.sent || got.Headers["user-agent"] == nil {
			t.Errorf("%s (last hop %s): default headers sent %v/%v, want %v; headers %v",
				tc.name, resp.Request.URL, auth, team, tc.sent, got.Headers)
		}
	}
}

// redirect.* beyond max still applies to http.Client's hops: forward_headers lets a default
// header follow to a named origin, allow_downgrade false refuses https → http.
func TestRedirectConfigAppliesToHTTPClientHops(t *testing.T) {
	other := server.HTTPS
	tr := newTransport(t, wirecore.Config{
		DefaultHeaders: map[string]string{"Authorization": "Bearer SECRET", "X-Team": "blue"},
		Redirect: wirecore.RedirectConfig{
			AllowDowngrade: wirecore.Bool(false),
			ForwardHeaders: []wirecore.ForwardHeaders{{Origin: other, Headers: []string{"x-team"}}},
		},
	})
	c := &http.Client{Transport: tr}
	resp, b := get(t, c, server.HTTP+"/redirect-to?status=302&url="+url.QueryEscape(other+"/headers"))
	var got struct {
		Headers map[string]any `json:"headers"`
	}
	if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if got.Headers["x-team"] != "blue" || got.Headers["authorization"] != nil {
		t.Fatalf("forwarded hop: %v", got.Headers)
	}
	_, err := c.Get(server.HTTPS + "/redirect-to?status=302&url=" + url.QueryEscape(server.HTTP+"/json"))
	if !errors.Is(err, wirecore.ErrRedirectDowngrade) {
		t.Fatalf("https → http with allow_downgrade false: %v", err)
	}
	// The default allows it.
	c = &http.Client{Transport: newTransport(t, wirecore.Config{})}
	if resp, _ := get(t, c, server.HTTPS+"/redirect-to?status=302&url="+url.QueryEscape(server.HTTP+"/json")); resp.StatusCode != 200 {
		t.Fatalf("https → http by default: %d", resp.StatusCode)
	}
}
