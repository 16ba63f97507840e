package wirecore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// directWaitsPass waits (up to 30 s) until wirecore.DirectWaits passes n.
func directWaitsPass(n int64) bool {
	for i := 0; wirecore.DirectWaits() <= n; i++ {
		if i > 3000 {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// directWaitsOn makes sure GOMAXPROCS allows direct waits (> 1) for the test.
func directWaitsOn(t *testing.T) {
	if n := runtime.GOMAXPROCS(0); n < 2 {
		runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(n) })
	}
}

func waitDirectWaits(t *testing.T, n int64) {
	t.Helper()
	if !directWaitsPass(n) {
		t.Fatal("the request never waited in the engine")
	}
}

// A request alone in flight waits for its completion in the engine (waitDirect), with or
// without a context that can end, over HTTP/1.1 and HTTP/2.
func TestAloneInFlightWaitsInTheEngine(t *testing.T) {
	directWaitsOn(t)
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	before := wirecore.DirectWaits()
	for _, base := range []string{server.HTTP, server.HTTPS} {
		for round := range 3 {
			ctx := context.Background()
			if round == 1 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Minute)
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/bytes/1024", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s round %d: %v", base, round, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(b) != 1024 || b[1000] != byte(1000%251) {
				t.Fatalf("%s round %d: %d bytes, %v", base, round, len(b), err)
			}
		}
	}
	if got := wirecore.DirectWaits() - before; got < 6 {
		t.Fatalf("%d of 6 requests waited in the engine", got)
	}
}

// Completions of requests started while one waits in the engine come to that waiter (the
// poller gets no wake-up for them): it hands each to its own request.
func TestDirectWaiterHandsOnOtherCompletions(t *testing.T) {
	directWaitsOn(t)
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	key := fmt.Sprintf("direct-%d", time.Now().UnixNano())
	gate := fmt.Sprintf("%s/gate?key=%s&n=2", server.HTTP, key)
	before := wirecore.DirectWaits()
	first := make(chan error, 1)
	go func() {
		resp, err := c.Get(gate)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		first <- err
	}()
	// The gate holds the first request until a second one arrives: it waits in the engine.
	waitDirectWaits(t, before)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			resp, err := c.Get(server.HTTP + "/bytes/1024")
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && len(b) != 1024 {
				err = fmt.Errorf("%d bytes", len(b))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("requests started while one waited in the engine never completed")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case err := <-first:
		t.Fatalf("the gated request completed before its gate opened: %v", err)
	default:
	}
	get(t, c, gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// A request waiting in the engine still ends with its context: cancelled, or a timeout at
// its deadline.
func TestDirectWaitEndsWithTheContext(t *testing.T) {
	directWaitsOn(t)
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	before := wirecore.DirectWaits()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if !directWaitsPass(before) {
			t.Error("the request never waited in the engine")
		}
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, "GET", server.HTTP+"/hang", nil)
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) || !errors.Is(err, wirecore.ErrCancelled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", server.HTTP+"/delay/3000", nil)
	if _, err := c.Do(req); !errors.Is(err, wirecore.ErrTimeoutTotal) {
		t.Fatalf("deadline: err = %v", err)
	}
	if got := wirecore.DirectWaits() - before; got < 2 {
		t.Fatalf("%d of 2 requests waited in the engine", got)
	}
}

// Shutdown ends a request waiting in the engine (no context to end it) instead of leaving it
// blocked.
func TestShutdownEndsADirectWait(t *testing.T) {
	directWaitsOn(t)
	tr, err := wirecore.NewTransport(wirecore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	before := wirecore.DirectWaits()
	got := make(chan error, 1)
	go func() {
		_, err := c.Get(server.HTTP + "/hang")
		got <- err
	}()
	waitDirectWaits(t, before)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("the hanging request succeeded")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the request waiting in the engine outlived Shutdown")
	}
}

// With GOMAXPROCS 1 a request alone in flight waits through the poller (see waitDirect).
func TestOneProcWaitsThroughThePoller(t *testing.T) {
	n := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(n)
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	before := wirecore.DirectWaits()
	for range 3 {
		if resp, b := get(t, c, server.HTTP+"/bytes/1024"); resp.StatusCode != 200 || len(b) != 1024 {
			t.Fatalf("%d, %d bytes", resp.StatusCode, len(b))
		}
	}
	if got := wirecore.DirectWaits() - before; got != 0 {
		t.Fatalf("%d requests waited in the engine with GOMAXPROCS 1", got)
	}
}

// A long request alone in flight stops waiting in the engine after a few waits that time out
// (directSlicesMax) and waits on its channel, instead of coming back to Go every slice.
func TestLongDirectWaitGivesUp(t *testing.T) {
	directWaitsOn(t)
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	before, slices := wirecore.DirectWaits(), wirecore.DirectSlices()
	resp, b := get(t, c, server.HTTP+"/delay/300")
	if resp.StatusCode != 200 || len(b) == 0 {
		t.Fatalf("%d, %q", resp.StatusCode, b)
	}
	if wirecore.DirectWaits() == before {
		t.Fatal("the request never waited in the engine")
	}
	if n := wirecore.DirectSlices() - slices; n > 10 {
		t.Fatalf("a 300 ms request waited %d times in the engine", n)
	}
}

// A completion the poller takes just before the direct waiter blocks (no thread was blocked when
// it came, so it wrote the pipe's byte) comes with a kick: the waiter looks at its channel again
// instead of sitting out its wait in the engine (here a minute long, so the test fails without
// the kick).
func TestPollerKicksADirectWaiterWhoseCompletionItTook(t *testing.T) {
	directWaitsOn(t)
	var forced atomic.Int32
	restore := wirecore.SetDirectWait(60_000, func(queued func() bool) {
		// Holds the waiter back until the poller has handed its completion over.
		for i := 0; i < 5000 && !queued(); i++ {
			time.Sleep(time.Millisecond)
		}
		if queued() {
			forced.Add(1)
		}
	})
	defer restore()
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	done := make(chan error, 1)
	go func() {
		for range 3 {
			resp, err := c.Get(server.HTTP + "/bytes/16")
			if err != nil {
				done <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a waiter whose completion the poller took was left in its minute-long wait")
	}
	if forced.Load() == 0 {
		t.Fatal("the poller never took a waiter's completion first")
	}
}
