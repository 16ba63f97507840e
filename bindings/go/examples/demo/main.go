// Command demo starts the wirecore test server, sends a few requests through a wirecore
// Transport with a plain http.Client, and prints the transport's stats.
//
//	go run ./examples/demo -server PATH/TO/wirecore-testserver
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

func main() {
	bin := flag.String("server", "", "path to wirecore-testserver")
	flag.Parse()
	cmd := exec.Command(*bin, "--exit-on-stdin-eof")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	var srv struct{ HTTP, HTTPS, CA string }
	if err := json.Unmarshal([]byte(line), &srv); err != nil {
		fmt.Fprintln(os.Stderr, "demo: server line:", err)
		os.Exit(1)
	}

	t, err := wirecore.NewTransport(wirecore.Config{
		Pool: wirecore.PoolConfig{MaxIdlePerHost: 8},
		TLS:  wirecore.TLSConfig{CAFiles: []string{srv.CA}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	defer t.Close()
	client := &http.Client{Transport: t}

	var wg sync.WaitGroup
	for _, base := range []string{srv.HTTP, srv.HTTPS} {
		for range 10 {
			wg.Go(func() {
				resp, err := client.Get(base + "/bytes/1024")
				if err != nil {
					fmt.Println("error:", err)
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				fmt.Printf("GET %s/bytes/1024 -> %d %s, %d bytes\n", base, resp.StatusCode, resp.Proto, n)
			})
		}
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.HTTP+"/delay/5000", nil)
	_, err = client.Do(req)
	var we *wirecore.Error
	if errors.As(err, &we) {
		fmt.Printf("GET /delay/5000 with a 200 ms deadline -> %s (timeout: %v)\n", we.Code, we.Timeout())
	}

	s, err := t.Stats()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(s, "", "  ")
	fmt.Printf("stats: %s\n", out)
}
