package wirecore

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The gate never lets more than its size in at once, and every waiter gets in.
func TestGateBoundsAndWakesEveryWaiter(t *testing.T) {
	g := &gate{size: 2, wake: make(chan struct{}, 1024)}
	var inside, most atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 200 {
				g.enter()
				n := inside.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				runtime.Gosched()
				inside.Add(-1)
				g.leave()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("a goroutine never got through the gate")
	}
	if m := most.Load(); m > 2 {
		t.Fatalf("%d goroutines were inside a gate of 2", m)
	}
	if n := g.n.Load(); n != 0 {
		t.Fatalf("the gate counts %d inside after all left", n)
	}
}

// A transport's gate is at least GOMAXPROCS wide.
func TestGateIsAtLeastGOMAXPROCS(t *testing.T) {
	n := runtime.GOMAXPROCS(gateSize * 2)
	defer runtime.GOMAXPROCS(n)
	if g := newGate(); g.size != gateSize*2 {
		t.Fatalf("gate of %d with GOMAXPROCS %d", g.size, gateSize*2)
	}
}
