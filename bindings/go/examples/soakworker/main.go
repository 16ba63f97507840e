// Command soakworker is the Go worker of the soak (bench/soak/soak.py).
//
//	soakworker SECONDS (BASE_URL CONFIG_JSON)...
//
// Until SECONDS pass it builds a Transport from the next pair, sends 40 mixed requests 4 at a
// time through it and closes it. It prints "err START_MS END_MS CODE" per failed request and
// "tick NOW_MS OK ERR GAUGE" about once a second (GAUGE: runtime.NumGoroutine()).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

var (
	paths   = []string{"/bytes/1024", "/bytes/65536", "/echo", "/json"}
	body    = bytes.Repeat([]byte("x"), 4096)
	ok, bad atomic.Int64
	out     sync.Mutex
)

func say(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Printf(format, args...)
}

func one(c *http.Client, base string, i int) {
	path := paths[i%len(paths)]
	start := time.Now().UnixMilli()
	code := ""
	var req *http.Request
	var err error
	if path == "/echo" {
		req, err = http.NewRequest("POST", base+path, bytes.NewReader(body))
	} else {
		req, err = http.NewRequest("GET", base+path, nil)
	}
	if err == nil {
		var resp *http.Response
		resp, err = c.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				code = fmt.Sprintf("status_%d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		var we *wirecore.Error
		if errors.As(err, &we) {
			code = we.Code
		} else {
			code = "other"
		}
	}
	if code == "" {
		ok.Add(1)
		return
	}
	bad.Add(1)
	say("err %d %d %s\n", start, time.Now().UnixMilli(), code)
}

func main() {
	seconds, err := strconv.ParseFloat(os.Args[1], 64)
	if err != nil || len(os.Args) < 4 || len(os.Args)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: soakworker SECONDS (BASE_URL CONFIG_JSON)...")
		os.Exit(2)
	}
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				say("tick %d %d %d %d\n", time.Now().UnixMilli(), ok.Load(), bad.Load(), runtime.NumGoroutine())
			}
		}
	}()
	for n := 0; time.Now().Before(deadline); n++ {
		k := 2 + 2*(n%((len(os.Args)-2)/2))
		base, config := os.Args[k], os.Args[k+1]
		t, err := wirecore.NewTransportJSON(config)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soakworker:", err)
			os.Exit(2)
		}
		c := &http.Client{Transport: t}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := n + 10*g; i < n+10*g+10; i++ {
					one(c, base, i)
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		t.Close()
	}
	close(done)
}
