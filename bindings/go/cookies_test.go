package wirecore_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

func sentCookie(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Headers map[string]any `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	s, _ := doc.Headers["cookie"].(string)
	return s
}

func setCookies(t *testing.T, c *http.Client, cookies ...string) {
	t.Helper()
	q := url.Values{"c": cookies}
	resp, err := c.Get(server.HTTP + "/set-cookie?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// The engine's jar is off by default, so an http.Client without a Jar sends no cookies.
func TestEngineCookieJarIsOffByDefault(t *testing.T) {
	tr, err := wirecore.NewTransport(wirecore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := &http.Client{Transport: tr}
	setCookies(t, c, "a=1")
	if got := sentCookie(t, c, server.HTTP+"/headers"); got != "" {
		t.Fatalf("cookie sent without a jar: %q", got)
	}
	if l, err := tr.Cookies(); err != nil || len(l) != 0 {
		t.Fatalf("Cookies() = %v, %v", l, err)
	}
}

// Enabled by config, the engine stores, sends, lists and clears cookies under an http.Client
// without a Jar of its own.
func TestEngineCookieJarStoresListsAndClears(t *testing.T) {
	tr, err := wirecore.NewTransport(wirecore.Config{Cookies: wirecore.CookieConfig{Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := &http.Client{Transport: tr}
	setCookies(t, c, "a=1; SameSite=Strict", "b=2; Max-Age=60; Path=/headers")
	if got := sentCookie(t, c, server.HTTP+"/headers"); got != "b=2; a=1" {
		t.Fatalf("sent %q, want longer path first", got)
	}
	l, err := tr.Cookies()
	if err != nil || len(l) != 2 {
		t.Fatalf("Cookies() = %v, %v", l, err)
	}
	byName := map[string]wirecore.Cookie{l[0].Name: l[0], l[1].Name: l[1]}
	a, b := byName["a"], byName["b"]
	if a.Value != "1" || a.Domain != "127.0.0.1" || !a.HostOnly || a.SameSite != "Strict" || !a.Expires.IsZero() {
		t.Fatalf("a = %+v", a)
	}
	if b.Path != "/headers" || !b.Expires.After(time.Now()) {
		t.Fatalf("b = %+v", b)
	}
	tr.ClearCookies()
	if l, _ := tr.Cookies(); len(l) != 0 {
		t.Fatalf("after ClearCookies: %v", l)
	}
	if got := sentCookie(t, c, server.HTTP+"/headers"); got != "" {
		t.Fatalf("sent %q after ClearCookies", got)
	}
}
