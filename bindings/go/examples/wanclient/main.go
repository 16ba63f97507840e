// Command wanclient is the Go side of the WAN benchmark (bench/wan/wan.py): net/http's default
// Transport (cloned, with the test CA; HTTP/2 over ALPN as it ships) vs wirecore's Transport.
//
//	wanclient URL N CA_PEM
//
// Prints "latency CLIENT MODE MS,MS,..." for N sequential, then N concurrent GETs, each mode on a
// fresh client.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

type transport interface {
	http.RoundTripper
	CloseIdleConnections()
}

func get(c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wanclient:", err)
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fmt.Fprintln(os.Stderr, "wanclient: status", resp.StatusCode)
		os.Exit(1)
	}
}

func show(name, mode string, ms []float64) {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = strconv.FormatFloat(m, 'f', 2, 64)
	}
	fmt.Printf("latency %s %s %s\n", name, mode, strings.Join(parts, ","))
}

func run(name string, newT func() transport, url string, n int) {
	t := newT()
	c := &http.Client{Transport: t}
	ms := make([]float64, n)
	for i := range n {
		start := time.Now()
		get(c, url)
		ms[i] = float64(time.Since(start).Microseconds()) / 1e3
	}
	t.CloseIdleConnections()
	show(name, "sequential", ms)

	t = newT()
	c = &http.Client{Transport: t}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			get(c, url)
			ms[i] = float64(time.Since(start).Microseconds()) / 1e3
		}()
	}
	wg.Wait()
	t.CloseIdleConnections()
	show(name, "concurrent", ms)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: wanclient URL N CA_PEM")
		os.Exit(2)
	}
	url, caPath := os.Args[1], os.Args[3]
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wanclient: N:", err)
		os.Exit(2)
	}
	pem, err := os.ReadFile(caPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wanclient:", err)
		os.Exit(2)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	run("net/http", func() transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: roots}
		return t
	}, url, n)
	cfg, _ := json.Marshal(map[string]any{"tls": map[string]any{"ca_files": []string{caPath}}})
	run("wirecore", func() transport {
		t, err := wirecore.NewTransportJSON(string(cfg))
		if err != nil {
			fmt.Fprintln(os.Stderr, "wanclient:", err)
			os.Exit(2)
		}
		return closer{t}
	}, url, n)
}

// closer closes the whole wirecore Transport when the run is done with it.
type closer struct{ *wirecore.Transport }

func (c closer) CloseIdleConnections() { c.Close() }
