package wirecore_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// server is the shared test server's startup line (tests/server/README.md).
var server struct {
	HTTP      string `json:"http"`
	HTTPS     string `json:"https"`
	BadTLS    string `json:"bad_tls"`
	Control   string `json:"control"`
	CA        string `json:"ca"`
	Blackhole string `json:"blackhole"`
	Silent    string `json:"silent"`
	raw       map[string]any
	line      string
}

// TestMain starts the test server from $WIRECORE_TESTSERVER (set by `make test-go`); it
// exits when this process does (its stdin closes).
func TestMain(m *testing.M) {
	bin := os.Getenv("WIRECORE_TESTSERVER")
	if bin == "" {
		fmt.Fprintln(os.Stderr, "WIRECORE_TESTSERVER is not set: run `make test-go`")
		os.Exit(1)
	}
	cmd := exec.Command(bin, "--exit-on-stdin-eof")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the test server:", err)
		os.Exit(1)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the test server's line:", err)
		os.Exit(1)
	}
	server.line = strings.TrimSpace(line)
	if err := json.Unmarshal([]byte(line), &server); err != nil {
		os.Exit(1)
	}
	_ = json.Unmarshal([]byte(line), &server.raw)
	code := m.Run()
	stdin.Close()
	_ = cmd.Wait()
	os.Exit(code)
}

// control calls the control API with net/http (its traffic is not counted).
func control(t testing.TB, method, path, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, server.Control+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("control %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("control %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func counters(t testing.TB) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(control(t, "GET", "/_control/counters", ""), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
