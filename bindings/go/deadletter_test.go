package wirecore_test

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// The callback receives exactly the requests that failed after every retry, on a goroutine.
func TestOnDeadLetterGetsExactlyTheRequestsThatFailedAfterRetries(t *testing.T) {
	tr, err := wirecore.NewTransport(wirecore.Config{
		Retry: wirecore.RetryConfig{MaxAttempts: 3, BackoffBaseMs: 1, BackoffMaxMs: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var mu sync.Mutex
	var got []wirecore.DeadLetter
	if err := tr.OnDeadLetter(func(l wirecore.DeadLetter) {
		mu.Lock()
		got = append(got, l)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	get := func(url string) int {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	control(t, "POST", "/_control/script", `{"path":"/s/go-flaky","replies":[{"status":503},{"status":200}]}`)
	if s := get(server.HTTP + "/s/go-flaky"); s != 200 {
		t.Fatalf("fixed by a retry: %d", s)
	}
	if s := get(server.HTTP + "/status/503"); s != 503 {
		t.Fatalf("503: %d", s)
	}
	if s := get(server.HTTP + "/status/404"); s != 404 {
		t.Fatalf("404: %d", s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/x"
	l.Close()
	req, _ := http.NewRequest("POST", refused, strings.NewReader("payload"))
	req.Header.Set("Authorization", "Bearer s")
	if _, err := c.Do(req); !errors.Is(err, wirecore.ErrConnect) {
		t.Fatalf("refused: %v", err)
	}
	// Letters arrive in order: once the last is in, every earlier one is.
	last := server.HTTP + "/status/502"
	get(last)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		done := n > 0 && got[n-1].URL == last
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last letter never came: %+v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("want 3 letters, got %+v", got)
	}
	s, p := got[0], got[1]
	if s.URL != server.HTTP+"/status/503" || s.ErrorCode != "status" || s.Status != 503 || s.Attempts != 3 {
		t.Errorf("503 letter: %+v", s)
	}
	if p.URL != refused || p.Method != "POST" || p.ErrorCode != "connect" || string(p.Body) != "payload" {
		t.Errorf("refused letter: %+v", p)
	}
	for _, h := range p.Headers {
		if strings.EqualFold(h[0], "authorization") {
			t.Errorf("credentials are left out: %+v", p.Headers)
		}
	}
	if p.TimeMs < 1_700_000_000_000 {
		t.Errorf("time: %d", p.TimeMs)
	}
	// The engine counts a letter delivered once the sink returned, which can be just after
	// this goroutine saw it: poll the count.
	st, _ := tr.Stats()
	for st.DeadLetter.Delivered != 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		st, _ = tr.Stats()
	}
	if st.DeadLetter.Delivered != 3 {
		t.Errorf("stats: %+v", st.DeadLetter)
	}
}
