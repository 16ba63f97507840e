// Command bench compares the wirecore Transport with net/http's Transport (tuned: MaxIdleConns
// 100, MaxIdleConnsPerHost 50) on GET 1 KiB, at several concurrencies, over HTTP/1.1 and over
// HTTP/2 with TLS. The server is the project's test server (-server) or nginx (-nginx, one
// worker, a certificate made here). Each cell runs both clients -repeat times, alternating
// which goes first, and reports medians. It prints a Markdown report.
//
//	bench -server PATH [-duration 3s] [-c 1,16,64,256] [-repeat 3]
//	bench -nginx /usr/sbin/nginx -repeat 5 -procs 1,2
//
// -procs runs every cell at each GOMAXPROCS given: pinned to one CPU Go's default is 1, but a
// program on a machine with more cores runs with more, and a request alone in flight takes
// another path then (see waitDirect in bindings/go).
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	allocs        float64 // Go heap allocations per request
	csw           float64 // context switches (voluntary + involuntary) per request
}

// cpuTime is the process's user+sys CPU time and its context switches so far.
func cpuTime() (time.Duration, int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
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
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, csw0 := cpuTime()
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
	cpu1, csw1 := cpuTime()
	cpu := cpu1 - cpu0
	runtime.ReadMemStats(&ms1)
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
		allocs: float64(ms1.Mallocs-ms0.Mallocs) / max(n, 1), csw: float64(csw1-csw0) / max(n, 1),
	}
}

// median of the repeats, field by field (each field's own median).
func median(rs []result) result {
	if len(rs) == 0 {
		return result{}
	}
	m := rs[0]
	mid := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
	var rps, cpu, p50, p99, allocs, csw []float64
	m.errors = 0
	for _, r := range rs {
		rps = append(rps, r.rps)
		cpu = append(cpu, r.cpuUs)
		p50 = append(p50, float64(r.p50))
		p99 = append(p99, float64(r.p99))
		allocs = append(allocs, r.allocs)
		csw = append(csw, r.csw)
		m.errors += r.errors
	}
	m.rps, m.cpuUs = mid(rps), mid(cpu)
	m.p50, m.p99 = time.Duration(mid(p50)), time.Duration(mid(p99))
	m.allocs, m.csw = mid(allocs), mid(csw)
	return m
}

type server struct {
	h1, h2, ca, name string
	stop             func()
}

func loadavg() string {
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		return strings.Join(strings.Fields(string(la))[:3], " ")
	}
	return "?"
}

func withCPU(cpu string, args []string) []string {
	if cpu == "" {
		return args
	}
	return append([]string{"taskset", "-c", cpu}, args...)
}

func testServer(bin, cpu string) server {
	args := withCPU(cpu, []string{bin, "--exit-on-stdin-eof", "--no-request-log", "--threads", "1"})
	cmd := exec.Command(args[0], args[1:]...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	var srv struct{ HTTP, HTTPS, CA string }
	if err := json.Unmarshal([]byte(line), &srv); err != nil {
		fail(fmt.Errorf("server line: %w", err))
	}
	return server{h1: srv.HTTP + "/bytes/1024", h2: srv.HTTPS + "/bytes/1024", ca: srv.CA,
		name: "the wirecore test server (GET /bytes/1024, 1 thread)",
		stop: func() { stdin.Close(); cmd.Wait() }}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCerts writes a CA (ca.pem) and a leaf for localhost/127.0.0.1 it signs (cert.pem,
// key.pem): rustls refuses a self-signed CA certificate as the server's own.
func writeCerts(dir string) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		fail(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		fail(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			fail(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("cert.pem", "CERTIFICATE", der)
	write("key.pem", "EC PRIVATE KEY", kd)
}

func nginx(bin, cpu string) server {
	dir, err := os.MkdirTemp("", "wirecore-bench-go-nginx-")
	if err != nil {
		fail(err)
	}
	_ = os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "www", "1k"), []byte(strings.Repeat("x", 1024)), 0o644)
	writeCerts(dir)
	h1, h2 := freePort(), freePort()
	conf := fmt.Sprintf(`user root; master_process off; worker_processes 1; daemon off;
pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 20000; }
http {
  access_log off; default_type application/octet-stream; keepalive_requests 1000000;
  client_body_temp_path %[1]s/cb; proxy_temp_path %[1]s/px; fastcgi_temp_path %[1]s/fc; uwsgi_temp_path %[1]s/uw; scgi_temp_path %[1]s/sc;
  server {
    listen 127.0.0.1:%[2]d; listen 127.0.0.1:%[3]d ssl http2;
    ssl_certificate %[1]s/cert.pem; ssl_certificate_key %[1]s/key.pem; root %[1]s/www;
  }
}
`, dir, h1, h2)
	_ = os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	args := withCPU(cpu, []string{bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf")})
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", h2))
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			fail(fmt.Errorf("nginx did not start: %s", log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ver, _ := exec.Command(bin, "-v").CombinedOutput()
	return server{h1: fmt.Sprintf("http://127.0.0.1:%d/1k", h1), h2: fmt.Sprintf("https://localhost:%d/1k", h2),
		ca: filepath.Join(dir, "ca.pem"), name: strings.TrimSpace(string(ver)) + " (GET /1k, one worker)",
		stop: func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	serverBin := flag.String("server", "", "path to wirecore-testserver")
	nginxBin := flag.String("nginx", "", "path to nginx: serve /1k from nginx instead of the test server")
	duration := flag.Duration("duration", 3*time.Second, "measured time per run")
	concs := flag.String("c", "1,16,64,256", "concurrencies")
	repeat := flag.Int("repeat", 1, "runs per client and cell, alternating which client goes first; medians reported")
	serverCPU := flag.String("server-cpu", "0", "CPU list for the server (taskset); empty: no pinning")
	only := flag.String("only", "", "run one client only (net/http or wirecore), for profiling")
	protos := flag.String("proto", "h1,h2", "protocols to run (h1, h2)")
	cpuProfile := flag.String("cpuprofile", "", "write a Go CPU profile of the runs to this file")
	procsFlag := flag.String("procs", "", "GOMAXPROCS values to run every cell at, e.g. 1,2 (empty: Go's default); "+
		"Go's default for a client pinned to one CPU is 1, on a machine with more cores it is more")
	flag.Parse()

	var srv server
	if *nginxBin != "" {
		srv = nginx(*nginxBin, *serverCPU)
	} else {
		srv = testServer(*serverBin, *serverCPU)
	}
	defer srv.stop()
	pemBytes, _ := os.ReadFile(srv.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	load0 := loadavg()

	type cell struct {
		procs   int
		std, wc []result
	}
	var cells []cell
	var names []string
	procsList := []int{runtime.GOMAXPROCS(0)}
	if *procsFlag != "" {
		procsList = nil
		for _, p := range strings.Split(*procsFlag, ",") {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				fail(fmt.Errorf("-procs: %q", p))
			}
			procsList = append(procsList, n)
		}
	}
	for _, procs := range procsList {
		runtime.GOMAXPROCS(procs)
		for _, proto := range strings.Split(*protos, ",") {
			url := srv.h1
			if proto == "h2" {
				url = srv.h2
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
				wc, err := wirecore.NewTransport(wirecore.Config{TLS: wirecore.TLSConfig{CAFiles: []string{srv.ca}}})
				if err != nil {
					fail(err)
				}
				c := cell{procs: procs}
				runStd := func() {
					r := result{conc: conc}
					if *only != "wirecore" {
						r = run(&http.Client{Transport: std}, url, conc, *duration)
					}
					r.client, r.proto = "net/http", proto
					c.std = append(c.std, r)
				}
				runWc := func() {
					r := result{conc: conc}
					if *only != "net/http" {
						r = run(&http.Client{Transport: wc}, url, conc, *duration)
					}
					r.client, r.proto = "wirecore", proto
					c.wc = append(c.wc, r)
				}
				for i := range *repeat {
					if i%2 == 0 {
						runStd()
						runWc()
					} else {
						runWc()
						runStd()
					}
					runtime.GC()
				}
				std.CloseIdleConnections()
				wc.Close()
				runtime.GC()
				cells = append(cells, c)
				names = append(names, fmt.Sprintf("%s C=%d GOMAXPROCS=%d", proto, conc, procs))
				fmt.Fprintf(os.Stderr, "%s C=%d GOMAXPROCS=%d done (load %s)\n", proto, conc, procs, loadavg())
			}
		}
	}

	fmt.Printf("# Go: wirecore Transport vs net/http (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("GET 1 KiB from %s on loopback, server on CPU %q; client GOMAXPROCS %s (column GOMAXPROCS), %s per run, %d run(s) per client and cell alternating which goes first (medians), %s, %d CPUs.\n",
		srv.name, *serverCPU, strings.Trim(fmt.Sprint(procsList), "[]"), *duration, *repeat, runtime.Version(), runtime.NumCPU())
	fmt.Printf("net/http is tuned as the seed (MaxIdleConns 100, MaxIdleConnsPerHost 50; ForceAttemptHTTP2 for h2).\n")
	fmt.Printf("h1 = HTTP/1.1 over plain TCP; h2 = HTTP/2 over TLS. CPU µs/req is the client process's user+sys CPU per request (getrusage).\n")
	fmt.Printf("Ratios are wirecore ÷ net/http measured in the same run (throughput: higher is better; CPU: lower is better).\n\n")
	fmt.Printf("Load average at the start: %s; at the end: %s (a shared machine: compare ratios within this run only).\n\n", load0, loadavg())
	fmt.Println("| proto | C | GOMAXPROCS | net/http req/s | wirecore req/s | ratio | net/http CPU µs/req | wirecore CPU µs/req | CPU ratio | net/http p50 / p99 | wirecore p50 / p99 | p50 ratio | Go allocs/req (std/wc) | ctx switches/req (std/wc) | errors (std/wc) |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range cells {
		s, w := median(c.std), median(c.wc)
		fmt.Printf("| %s | %d | %d | %.0f | %.0f | **%.2f×** | %.1f | %.1f | **%.2f×** | %s / %s | %s / %s | %.2f× | %.1f / %.1f | %.2f / %.2f | %d / %d |\n",
			s.proto, s.conc, c.procs, s.rps, w.rps, w.rps/s.rps, s.cpuUs, w.cpuUs, w.cpuUs/s.cpuUs,
			s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond),
			w.p50.Round(time.Microsecond), w.p99.Round(time.Microsecond),
			float64(w.p50)/float64(s.p50), s.allocs, w.allocs, s.csw, w.csw, s.errors, w.errors)
	}
	if *repeat > 1 {
		fmt.Printf("\nEvery run (req/s, CPU µs/req; net/http | wirecore):\n\n")
		for i, c := range cells {
			var parts []string
			for j := range c.std {
				parts = append(parts, fmt.Sprintf("%.0f/%.1f | %.0f/%.1f", c.std[j].rps, c.std[j].cpuUs, c.wc[j].rps, c.wc[j].cpuUs))
			}
			fmt.Printf("- %s: %s\n", names[i], strings.Join(parts, "; "))
		}
	}
}
