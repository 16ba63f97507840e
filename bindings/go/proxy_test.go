package wirecore_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// Proxies against the test server's own (tests/server/README.md): an HTTP proxy in absolute
// form and through CONNECT (h1 and h2 over TLS), proxy auth, NoProxy, and SOCKS5.

type proxyCounters struct {
	Tunnels   int      `json:"tunnels"`
	Forwarded int      `json:"forwarded"`
	Rejected  int      `json:"rejected"`
	Failed    int      `json:"failed"`
	Targets   []string `json:"targets"`
}

func proxyInfo(t *testing.T, key string) string {
	t.Helper()
	s, _ := server.raw[key].(string)
	if s == "" {
		t.Fatalf("the test server's line has no %q", key)
	}
	return s
}

func proxyCountersOf(t *testing.T) map[string]proxyCounters {
	t.Helper()
	var m map[string]proxyCounters
	if err := json.Unmarshal(control(t, "GET", "/_control/proxies", ""), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func proxiedClient(t *testing.T, p wirecore.ProxyConfig, cfg wirecore.Config) *http.Client {
	t.Helper()
	p.FromEnv = wirecore.Bool(false)
	cfg.Proxy = p
	return &http.Client{Transport: newTransport(t, cfg)}
}

func echoedHeaders(t *testing.T, c *http.Client, u string) map[string]any {
	t.Helper()
	_, b := get(t, c, u)
	var doc struct {
		Headers map[string]any `json:"headers"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return doc.Headers
}

func TestHTTPProxyAbsoluteFormKeepsItsCredentials(t *testing.T) {
	control(t, "POST", "/_control/reset", "")
	creds, addr := proxyInfo(t, "proxy_credentials"), proxyInfo(t, "proxy_auth")
	c := proxiedClient(t, wirecore.ProxyConfig{HTTP: "http://" + creds + "@" + addr}, wirecore.Config{})
	h := echoedHeaders(t, c, server.HTTP+"/headers")
	if h["via"] != "1.1 wirecore-test-proxy" || h["proxy-authorization"] != nil {
		t.Fatalf("origin saw %v", h)
	}
	if got := proxyCountersOf(t)["proxy_auth"]; got.Forwarded != 1 || got.Rejected != 0 {
		t.Fatalf("proxy_auth %+v", got)
	}
}

func TestHTTPSProxyTunnelsWithH2OrH1Inside(t *testing.T) {
	addr := proxyInfo(t, "proxy")
	for _, tc := range []struct {
		h2    *bool
		proto string
	}{{nil, "HTTP/2.0"}, {wirecore.Bool(false), "HTTP/1.1"}} {
		control(t, "POST", "/_control/reset", "")
		c := proxiedClient(t, wirecore.ProxyConfig{HTTPS: "http://" + addr},
			wirecore.Config{HTTP2: wirecore.HTTP2Config{Enabled: tc.h2}})
		for range 3 {
			resp, b := get(t, c, server.HTTPS+"/bytes/4")
			if resp.Proto != tc.proto || len(b) != 4 {
				t.Fatalf("%s, %d bytes; want %s", resp.Proto, len(b), tc.proto)
			}
		}
		if got := proxyCountersOf(t)["proxy"]; got.Tunnels != 1 || got.Forwarded != 0 {
			t.Fatalf("%s: proxy %+v, want one pooled tunnel", tc.proto, got)
		}
	}
}

func TestProxyAuthRequiredIsAConnectError(t *testing.T) {
	control(t, "POST", "/_control/reset", "")
	addr := proxyInfo(t, "proxy_auth")
	for _, userinfo := range []string{"", "wirecore:wrong@"} {
		c := proxiedClient(t, wirecore.ProxyConfig{HTTPS: "http://" + userinfo + addr}, wirecore.Config{})
		_, err := c.Get(server.HTTPS + "/bytes/1")
		if !errors.Is(err, wirecore.ErrConnect) || !strings.Contains(err.Error(), "407") || !strings.Contains(err.Error(), addr) {
			t.Fatalf("%q: %v", userinfo, err)
		}
	}
	// Over http:// the proxy's 407 is the response.
	c := proxiedClient(t, wirecore.ProxyConfig{HTTP: "http://" + addr}, wirecore.Config{})
	if resp, _ := get(t, c, server.HTTP+"/bytes/1"); resp.StatusCode != 407 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := proxyCountersOf(t)["proxy_auth"].Rejected; got != 3 {
		t.Fatalf("rejected %d, want 3 (a 407 is not retried)", got)
	}
	if n := counters(t)["requests"].(float64); n != 0 {
		t.Fatalf("%v requests reached the origin", n)
	}
}

func TestNoProxyEntriesGoDirect(t *testing.T) {
	control(t, "POST", "/_control/reset", "")
	u, _ := url.Parse(server.HTTP)
	for _, entry := range []string{"127.0.0.1", "*", "127.0.0.1:" + u.Port()} {
		c := proxiedClient(t, wirecore.ProxyConfig{HTTP: "http://" + proxyInfo(t, "proxy"), NoProxy: []string{entry}}, wirecore.Config{})
		if h := echoedHeaders(t, c, server.HTTP+"/headers"); h["via"] != nil {
			t.Fatalf("%s: went through the proxy: %v", entry, h)
		}
	}
	if got := proxyCountersOf(t)["proxy"].Forwarded; got != 0 {
		t.Fatalf("forwarded %d", got)
	}
}

func TestSOCKS5ResolvesHereAndSOCKS5hAtTheProxy(t *testing.T) {
	addr := proxyInfo(t, "socks5")
	httpURL, _ := url.Parse(server.HTTP)
	tlsURL, _ := url.Parse(server.HTTPS)
	for _, scheme := range []string{"socks5", "socks5h"} {
		control(t, "POST", "/_control/reset", "")
		p := scheme + "://" + addr
		c := proxiedClient(t, wirecore.ProxyConfig{HTTP: p, HTTPS: p}, wirecore.Config{})
		if h := echoedHeaders(t, c, server.HTTP+"/headers"); h["via"] != nil {
			t.Fatalf("forwarded, not tunnelled: %v", h)
		}
		resp, b := get(t, c, server.HTTPS+"/bytes/2")
		if resp.Proto != "HTTP/2.0" || len(b) != 2 {
			t.Fatalf("%s, %d bytes", resp.Proto, len(b))
		}
		got := proxyCountersOf(t)["socks5"]
		if got.Tunnels != 2 || len(got.Targets) != 2 || got.Targets[0] != "ip:"+httpURL.Host {
			t.Fatalf("%s: %+v", scheme, got)
		}
		want := "^name:localhost:" + tlsURL.Port() + "$"
		if scheme == "socks5" {
			want = `^ip:(127\.0\.0\.1|\[::1\]):` + tlsURL.Port() + "$"
		}
		if !regexp.MustCompile(want).MatchString(got.Targets[1]) {
			t.Fatalf("%s: target %q, want %s", scheme, got.Targets[1], want)
		}
	}
}

func TestSOCKS5UserPasswordAndRefusals(t *testing.T) {
	control(t, "POST", "/_control/reset", "")
	creds, addr := proxyInfo(t, "proxy_credentials"), proxyInfo(t, "socks5_auth")
	c := proxiedClient(t, wirecore.ProxyConfig{HTTPS: "socks5h://" + creds + "@" + addr}, wirecore.Config{})
	if resp, _ := get(t, c, server.HTTPS+"/bytes/1"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, tc := range []struct{ userinfo, says string }{
		{"wirecore:wrong@", "refused the user name and password"},
		{"", "accepts none of the offered authentication methods"},
	} {
		c := proxiedClient(t, wirecore.ProxyConfig{HTTPS: "socks5://" + tc.userinfo + addr}, wirecore.Config{})
		resp, err := c.Get(server.HTTPS + "/bytes/1")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if !errors.Is(err, wirecore.ErrConnect) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "socks5://"+addr) {
			t.Fatalf("%q: %v", tc.userinfo, err)
		}
	}
	if got := proxyCountersOf(t)["socks5_auth"]; got.Tunnels != 1 || got.Rejected != 2 {
		t.Fatalf("socks5_auth %+v (refusals are not retried)", got)
	}
}
