// Command bench compares the wirecore Transport with net/http's Transport (tuned: MaxIdleConns
// 100, MaxIdleConnsPerHost 50) on GET /bytes/1024 against the project's test server, at several
// concurrencies, over HTTP/1.1 and over HTTP/2 with TLS. It prints a Markdown report.
//
//	bench -server PATH [-duration 3s] [-c 1,16,64,256]
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

type result struct {
	client, proto string
	conc          int
	rps           float64
	cpuUs         float64
	p50, p99      time.Duration
	errors        int64
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(c *http.Client, url string, conc int, d time.Duration) result {
	// Warm up: open the connections.
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for range 5 {
				if resp, err := c.Get(url); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	var count, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	stop := time.Now().Add(d)
	cpu0 := cpuTime()
	t0 := time.Now()
	for w := range conc {
		wg.Go(func() {
			l := make([]time.Duration, 0, 4096)
			for time.Now().Before(stop) {
				s := time.Now()
				resp, err := c.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				l = append(l, time.Since(s))
				count.Add(1)
			}
			lat[w] = l
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	n := float64(count.Load())
	return result{
		conc: conc, rps: n / elapsed.Seconds(), cpuUs: float64(cpu.Microseconds()) / max(n, 1),
		p50: pct(0.50), p99: pct(0.99), errors: errs.Load(),
	}
}

func main() {
	serverBin := flag.String("server", "", "path to wirecore-testserver")
	duration := flag.Duration("duration", 3*time.Second, "measured time per cell")
	concs := flag.String("c", "1,16,64,256", "concurrencies")
	serverCPU := flag.String("server-cpu", "0", "CPU list for the server (taskset); empty: no pinning")
	only := flag.String("only", "", "run one client only (net/http or wirecore), for profiling")
	protos := flag.String("proto", "h1,h2", "protocols to run (h1, h2)")
	cpuProfile := flag.String("cpuprofile", "", "write a Go CPU profile of the measured runs to this file")
	flag.Parse()

	args := []string{*serverBin, "--exit-on-stdin-eof", "--no-request-log", "--threads", "1"}
	if *serverCPU != "" {
		args = append([]string{"taskset", "-c", *serverCPU}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	var srv struct{ HTTP, HTTPS, CA string }
	if err := json.Unmarshal([]byte(line), &srv); err != nil {
		fmt.Fprintln(os.Stderr, "server line:", err)
		os.Exit(1)
	}
	pem, _ := os.ReadFile(srv.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	var results []result
	for _, proto := range strings.Split(*protos, ",") {
		url := srv.HTTP + "/bytes/1024"
		if proto == "h2" {
			url = srv.HTTPS + "/bytes/1024"
		}
		for _, cs := range strings.Split(*concs, ",") {
			conc, _ := strconv.Atoi(cs)
			// net/http, tuned as the seed: MaxIdleConns 100, MaxIdleConnsPerHost 50.
			std := &http.Transport{
				MaxIdleConns:        100,
				MaxIdleConnsPerHost: 50,
				ForceAttemptHTTP2:   proto == "h2",
				TLSClientConfig:     &tls.Config{RootCAs: pool},
			}
			var r result
			if *cpuProfile != "" {
				f, err := os.Create(*cpuProfile)
				if err == nil {
					defer f.Close()
					_ = pprof.StartCPUProfile(f)
					defer pprof.StopCPUProfile()
				}
			}
			if *only != "wirecore" {
				r = run(&http.Client{Transport: std}, url, conc, *duration)
			}
			r.client, r.proto = "net/http", proto
			results = append(results, r)
			std.CloseIdleConnections()

			wc, err := wirecore.NewTransport(wirecore.Config{TLS: wirecore.TLSConfig{CAFiles: []string{srv.CA}}})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			r = result{conc: conc}
			if *only != "net/http" {
				r = run(&http.Client{Transport: wc}, url, conc, *duration)
			}
			r.client, r.proto = "wirecore", proto
			results = append(results, r)
			wc.Close()
			runtime.GC()
			fmt.Fprintf(os.Stderr, "%s C=%d done\n", proto, conc)
		}
	}

	fmt.Printf("# Go: wirecore Transport vs net/http (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("GET /bytes/1024 from the wirecore test server (1 thread, CPU %q) on loopback; client GOMAXPROCS=%d, %s per cell, %s.\n",
		*serverCPU, runtime.GOMAXPROCS(0), *duration, runtime.Version())
	fmt.Printf("net/http is tuned as the seed (MaxIdleConns 100, MaxIdleConnsPerHost 50; ForceAttemptHTTP2 for h2).\n")
	fmt.Printf("h1 = HTTP/1.1 over plain TCP; h2 = HTTP/2 over TLS. CPU µs/req is the client process's user+sys CPU per request.\n")
	fmt.Printf("Ratios are wirecore ÷ net/http measured in the same run (throughput: higher is better; CPU: lower is better).\n\n")
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("Load average at the end: %s (a shared machine: compare ratios within this run only).\n\n", strings.Join(strings.Fields(string(la))[:3], " "))
	}
	fmt.Println("| proto | C | net/http req/s | wirecore req/s | ratio | net/http CPU µs/req | wirecore CPU µs/req | net/http p50 / p99 | wirecore p50 / p99 | errors (std/wc) |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i := 0; i+1 < len(results); i += 2 {
		s, w := results[i], results[i+1]
		fmt.Printf("| %s | %d | %.0f | %.0f | **%.2f×** | %.1f | %.1f | %s / %s | %s / %s | %d / %d |\n",
			s.proto, s.conc, s.rps, w.rps, w.rps/s.rps, s.cpuUs, w.cpuUs,
			s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond),
			w.p50.Round(time.Microsecond), w.p99.Round(time.Microsecond), s.errors, w.errors)
	}
}
