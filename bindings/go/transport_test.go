package wirecore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

func newTransport(t testing.TB, cfg wirecore.Config) *wirecore.Transport {
	t.Helper()
	if len(cfg.TLS.CAFiles) == 0 {
		cfg.TLS.CAFiles = []string{server.CA}
	}
	tr, err := wirecore.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func get(t testing.TB, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, b
}

func TestGetOverHTTP1(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	for round := range 3 {
		resp, b := get(t, c, server.HTTP+"/bytes/1024")
		if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" || len(b) != 1024 {
			t.Fatalf("round %d: %d %s %d bytes", round, resp.StatusCode, resp.Proto, len(b))
		}
		for i, x := range b {
			if x != byte(i%251) {
				t.Fatalf("byte %d is %d", i, x)
			}
		}
		if resp.Header.Get("Content-Type") != "application/octet-stream" || resp.ContentLength != 1024 {
			t.Fatalf("headers %v, length %d", resp.Header, resp.ContentLength)
		}
	}
}

func TestGetOverHTTP2WithTLS(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	resp, b := get(t, c, server.HTTPS+"/json")
	if resp.ProtoMajor != 2 || !json.Valid(b) {
		t.Fatalf("%s, body %q", resp.Proto, b)
	}
}

func TestRequestHeadersAndBufferedBody(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	req, _ := http.NewRequest("POST", server.HTTP+"/echo?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var echo struct {
		Method  string         `json:"method"`
		Body    string         `json:"body"`
		Headers map[string]any `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	if echo.Method != "POST" || echo.Body != `{"a":1}` || echo.Headers["content-type"] != "application/json" {
		t.Fatalf("echo: %+v", echo)
	}
	if fmt.Sprint(echo.Headers["x-multi"]) != "[one two]" {
		t.Fatalf("x-multi: %v", echo.Headers["x-multi"])
	}
}

func TestStreamedRequestBody(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("x"), 10000)
		for range 300 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", server.HTTP+"/upload", pr) // unknown length: streams
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"body_len":3000000`) {
		t.Fatalf("upload: %s", b)
	}
}

func TestStreamedResponseBody(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	start := time.Now()
	resp, err := c.Get(server.HTTP + "/stream?chunks=5&size=1000&delay_ms=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := time.Since(start)
	buf := make([]byte, 100000)
	total, reads := 0, 0
	for {
		n, err := resp.Body.Read(buf)
		total += n
		reads++
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != 5000 || reads < 3 {
		t.Fatalf("%d bytes in %d reads", total, reads)
	}
	// Four 100 ms gaps come after the first chunk: a head that waited for the body would leave
	// almost nothing for the reads. A lower bound only, so a slow machine cannot break it.
	if body := time.Since(start) - head; body < 300*time.Millisecond {
		t.Fatalf("the head waited for the body (head %v, body %v)", head, body)
	}
}

func TestContextCancelReachesTheServer(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	control(t, "POST", "/_control/reset", "")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", server.HTTP+"/hang", nil)
	start := time.Now()
	_, err := c.Do(req)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, wirecore.ErrCancelled) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	for i := 0; ; i++ {
		if counters(t)["requests_cancelled"].(float64) >= 1 {
			break
		}
		if i > 100 {
			t.Fatal("the server never saw the cancel")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestContextCancelDuringBody(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", server.HTTP+"/stream?chunks=50&size=100&delay_ms=100", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.AfterFunc(150*time.Millisecond, cancel)
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestContextDeadlineIsATimeout(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", server.HTTP+"/delay/3000", nil)
	_, err := c.Do(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("not a net.Error timeout: %v", err)
	}
	if !errors.Is(err, wirecore.ErrTimeoutTotal) {
		t.Fatalf("not ErrTimeoutTotal: %v", err)
	}
}

func TestEngineErrorsAreTypedValues(t *testing.T) {
	tr := newTransport(t, wirecore.Config{Timeouts: wirecore.TimeoutConfig{ConnectMs: 200}})
	c := &http.Client{Transport: tr}
	cases := []struct {
		url  string
		want error
	}{
		{"http://127.0.0.1:1/", wirecore.ErrConnect},
		{"http://" + server.Blackhole + "/", wirecore.ErrTimeoutConnect},
		{server.BadTLS + "/json", wirecore.ErrTLS},
		{server.HTTP + "/reset?bytes=100000", wirecore.ErrIO},
	}
	for _, tc := range cases {
		resp, err := c.Get(tc.url)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var we *wirecore.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &we) || wirecore.Sentinel(we.Code) != tc.want {
			t.Errorf("%s: got %v, want %v", tc.url, err, tc.want)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() != (tc.want == wirecore.ErrTimeoutConnect) {
			t.Errorf("%s: Timeout() = %v", tc.url, ne.Timeout())
		}
	}
	_, err := c.Get("ftp://example.com/")
	if !errors.Is(err, wirecore.ErrInvalidURL) {
		t.Errorf("ftp: %v", err)
	}
	req, _ := http.NewRequest("GET", server.HTTP+"/json", nil)
	req.Header.Set("X-Bad", "a\x00b")
	if _, err := tr.RoundTrip(req); !errors.Is(err, wirecore.ErrInvalidHeader) {
		t.Errorf("NUL in a header: %v", err)
	}
}

func TestEveryCoreCodeIsMapped(t *testing.T) {
	codes := wirecore.ErrorCodes()
	if len(codes) < 20 {
		t.Fatalf("only %d codes: %v", len(codes), codes)
	}
	seen := map[error]string{}
	for _, code := range codes {
		s := wirecore.Sentinel(code)
		if s == nil {
			t.Errorf("code %q has no sentinel", code)
			continue
		}
		if other, dup := seen[s]; dup {
			t.Errorf("%q and %q share a sentinel", code, other)
		}
		seen[s] = code
		err := fmt.Errorf("wrapped: %w", &wirecore.Error{Code: code})
		if !errors.Is(err, s) {
			t.Errorf("errors.Is fails for %q", code)
		}
		for _, other := range codes {
			if other != code && errors.Is(err, wirecore.Sentinel(other)) {
				t.Errorf("%q matches %q", code, other)
			}
		}
		want := strings.HasPrefix(code, "timeout.")
		if (&wirecore.Error{Code: code}).Timeout() != want {
			t.Errorf("%q: Timeout() != %v", code, want)
		}
	}
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	_, err := wirecore.NewTransportJSON(`{"pool":{"max_idel_per_host":3}}`)
	var we *wirecore.Error
	if !errors.As(err, &we) || !errors.Is(err, wirecore.ErrInvalidConfig) || !strings.Contains(we.Message, "max_idel_per_host") {
		t.Fatalf("err = %v", err)
	}
	_, err = wirecore.NewTransport(wirecore.Config{TLS: wirecore.TLSConfig{MinVersion: "1.1"}})
	if !errors.Is(err, wirecore.ErrInvalidConfig) {
		t.Fatalf("min_version 1.1: %v", err)
	}
}

func TestStatsAndPrometheus(t *testing.T) {
	tr := newTransport(t, wirecore.Config{})
	c := &http.Client{Transport: tr}
	for range 5 {
		get(t, c, server.HTTP+"/bytes/100")
	}
	s, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.RequestsTotal != 5 || s.ResponsesByStatusClass["2xx"] != 5 || s.Pool.Reuses != 4 || len(s.Origins) != 1 {
		t.Fatalf("stats: %+v", s)
	}
	if o := s.Origins[server.HTTP]; o.Protocol != "h1" || o.Connects != 1 {
		t.Fatalf("origin: %+v", s.Origins)
	}
	if p := tr.Prometheus(); !strings.Contains(p, "wirecore_requests_total") {
		t.Fatalf("prometheus: %.300s", p)
	}
	tr.Close()
	if _, err := tr.Stats(); !errors.Is(err, wirecore.ErrClosed) {
		t.Fatalf("stats after close: %v", err)
	}
	if _, err := c.Get(server.HTTP + "/json"); !errors.Is(err, wirecore.ErrClosed) {
		t.Fatalf("request after close: %v", err)
	}
}

func threads() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			var n int
			fmt.Sscan(strings.TrimSpace(v), &n)
			return n
		}
	}
	return -1
}

// 5,000 requests in flight at once must not take a thread each.
func TestFiveThousandGoroutinesFewThreads(t *testing.T) {
	tr := newTransport(t, wirecore.Config{Pool: wirecore.PoolConfig{MaxConnections: 200, MaxConnectionsPerHost: 200}})
	c := &http.Client{Transport: tr}
	const n = 5000
	var maxThreads atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if th := int64(threads()); th > maxThreads.Load() {
					maxThreads.Store(th)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			resp, err := c.Get(server.HTTP + "/delay/20")
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	t.Logf("max threads: %d", maxThreads.Load())
	if maxThreads.Load() >= 64 {
		t.Fatalf("%d threads for %d concurrent requests", maxThreads.Load(), n)
	}
	s, _ := tr.Stats()
	if s.RequestsTotal != n {
		t.Fatalf("requests_total %d", s.RequestsTotal)
	}
}

// After Close, every goroutine the transport started (poller, body pumps) is gone.
func TestNoGoroutineLeakAfterClose(t *testing.T) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	tr, err := wirecore.NewTransport(wirecore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	for range 20 {
		resp, err := c.Post(server.HTTP+"/upload", "", io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// One response left unread and unclosed: Close must not hang on it.
	if _, err := c.Get(server.HTTP + "/stream?chunks=20&size=10&delay_ms=50"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	tr.Shutdown(ctx)
	tr.Close()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Transport and response bodies nobody closes are freed by cleanups.
func TestCleanupsFreeForgottenHandles(t *testing.T) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	for range 10 {
		tr, err := wirecore.NewTransport(wirecore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Get(server.HTTP + "/bytes/10")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp // body never closed, transport never closed
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("pollers still running: %d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

func rssKB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var n int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n)
			return n
		}
	}
	return -1
}

// Many requests, some bodies left for the cleanups: memory stays flat.
func TestNoLeakOverManyRequests(t *testing.T) {
	total := 100_000
	if testing.Short() || raceEnabled {
		// The race detector's shadow memory grows with every access: RSS says nothing there.
		total = 5_000
	}
	tr := newTransport(t, wirecore.Config{})
	c := &http.Client{Transport: tr}
	run := func(n int) {
		var wg sync.WaitGroup
		per := n / 16
		for w := range 16 {
			wg.Go(func() {
				for i := range per {
					resp, err := c.Get(server.HTTP + "/bytes/1024")
					if err != nil {
						t.Error(err)
						return
					}
					if (i+w)%10 == 0 {
						continue // forgotten: the cleanup frees it
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		runtime.GC()
		runtime.GC()
	}
	run(total / 5)
	warm := rssKB()
	run(total * 4 / 5)
	after := rssKB()
	t.Logf("%d requests: RSS %d kB after warm-up, %d kB at the end", total, warm, after)
	if !raceEnabled && after-warm > 64*1024 {
		t.Fatalf("RSS grew by %d kB", after-warm)
	}
	s, _ := tr.Stats()
	if s.RequestsInFlight != 0 {
		t.Fatalf("in flight after the run: %d", s.RequestsInFlight)
	}
}

func TestCloseIdleConnectionsOpensANewConnection(t *testing.T) {
	for _, base := range []string{server.HTTP, server.HTTPS} {
		tr := newTransport(t, wirecore.Config{})
		c := &http.Client{Transport: tr}
		before := counters(t)["connections_accepted"].(float64)
		get(t, c, base+"/bytes/100")
		get(t, c, base+"/bytes/100")
		s, err := tr.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Pool.Connects != 1 || s.Pool.Reuses != 1 || s.Pool.Idle+s.Pool.H2Sessions == 0 {
			t.Fatalf("%s before CloseIdleConnections: %+v", base, s.Pool)
		}
		if got := counters(t)["connections_accepted"].(float64) - before; got != 1 {
			t.Fatalf("%s: the server accepted %v connections for two requests", base, got)
		}
		c.CloseIdleConnections() // http.Client forwards to the Transport
		if s, _ = tr.Stats(); s.Pool.Idle != 0 || s.Pool.Connections != 0 {
			t.Fatalf("%s after CloseIdleConnections: %+v", base, s.Pool)
		}
		resp, b := get(t, c, base+"/bytes/100")
		if resp.StatusCode != 200 || len(b) != 100 {
			t.Fatalf("%s after CloseIdleConnections: %d, %d bytes", base, resp.StatusCode, len(b))
		}
		if s, _ = tr.Stats(); s.Pool.Connects != 2 || s.Pool.Reuses != 1 {
			t.Fatalf("%s: the request after CloseIdleConnections reused a connection: %+v", base, s.Pool)
		}
		if got := counters(t)["connections_accepted"].(float64) - before; got != 2 {
			t.Fatalf("%s: the server accepted %v connections, want 2", base, got)
		}
	}
	// After Close it is a no-op, not a crash.
	tr := newTransport(t, wirecore.Config{})
	tr.Close()
	tr.CloseIdleConnections()
}

func TestBodiesThatArriveWithTheHead(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	// 100 bytes fit the first buffer guess; 50,000 need a second (exact) one; 200,000 stream.
	for _, n := range []int{0, 100, 50_000, 200_000, 100} {
		resp, b := get(t, c, fmt.Sprintf("%s/bytes/%d", server.HTTP, n))
		if resp.StatusCode != 200 || len(b) != n || resp.ContentLength != int64(n) {
			t.Fatalf("/bytes/%d: %d, %d bytes, length %d", n, resp.StatusCode, len(b), resp.ContentLength)
		}
		for i, x := range b {
			if x != byte(i%251) {
				t.Fatalf("/bytes/%d: byte %d is %d", n, i, x)
			}
		}
	}
	resp, err := c.Get(server.HTTP + "/bytes/10")
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4)
	if n, err := resp.Body.Read(p); n != 4 || err != nil || p[3] != 3 {
		t.Fatalf("first read: %d %v %v", n, err, p)
	}
	var sink strings.Builder
	if n, err := io.Copy(&sink, resp.Body); n != 6 || err != nil {
		t.Fatalf("rest: %d %v", n, err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(p); err == nil {
		t.Fatal("read after close succeeded")
	}
	head, err := c.Head(server.HTTP + "/bytes/10")
	if err != nil || head.StatusCode != 200 || head.Body != http.NoBody {
		t.Fatalf("HEAD: %v %+v", err, head)
	}
}

// Response headers are parsed out of one buffer shared with a small body: a repeated header keeps
// every value in order, names are canonical, and the strings stay intact after the body is read,
// closed and collected.
func TestResponseHeadersRepeatedAndCanonical(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	for _, base := range []string{server.HTTP, server.HTTPS} {
		resp, body := get(t, c, base+"/set-cookie?c=a%3D1&c=b%3D2&c=z%3D3")
		runtime.GC()
		if got := resp.Header.Values("Set-Cookie"); len(got) != 3 || got[0] != "a=1" || got[1] != "b=2" || got[2] != "z=3" {
			t.Fatalf("%s: Set-Cookie %q, want a=1 b=2 z=3 in order", base, got)
		}
		if _, ok := resp.Header["Set-Cookie"]; !ok {
			t.Fatalf("%s: header keys %v are not canonical", base, resp.Header)
		}
		if resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
			t.Fatalf("%s: Content-Length %q / %d for a %d-byte body", base, resp.Header.Get("Content-Length"), resp.ContentLength, len(body))
		}
		resp2, body2 := get(t, c, base+"/bytes/1024")
		if len(body2) != 1024 || resp2.Header.Get("Content-Length") != "1024" || resp2.ContentLength != 1024 {
			t.Fatalf("%s: /bytes/1024: %d bytes, Content-Length %q", base, len(body2), resp2.Header.Get("Content-Length"))
		}
	}
}

// Take's buffer follows the responses' size: a 1 KiB body's head and body fit in ~1.3 KiB (not
// Go's 2 KiB size class), a larger response grows it at once, and it shrinks back.
func TestTakeBufferFollowsResponseSizes(t *testing.T) {
	tr := newTransport(t, wirecore.Config{})
	c := &http.Client{Transport: tr}
	small := func() {
		t.Helper()
		for range 130 {
			if _, b := get(t, c, server.HTTP+"/bytes/1024"); len(b) != 1024 {
				t.Fatalf("%d bytes", len(b))
			}
		}
		if h := wirecore.TakeHint(tr); h < 1024 || h > 1536 {
			t.Fatalf("after 1 KiB bodies the buffer guess is %d bytes", h)
		}
	}
	small()
	if _, b := get(t, c, server.HTTP+"/bytes/16384"); len(b) != 16384 {
		t.Fatalf("%d bytes", len(b))
	}
	if h := wirecore.TakeHint(tr); h < 16384 {
		t.Fatalf("after a 16 KiB body the buffer guess is %d bytes", h)
	}
	small()
}
