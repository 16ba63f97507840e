package wirecore

import (
	"encoding/json"
	"time"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

// Cookie is one cookie of the engine's jar, as Transport.Cookies lists it.
//
// The engine's jar is off unless the config enables it ({"cookies": {"enabled": true}}). An
// http.Client keeps its own jar in http.Client.Jar, which works over a Transport as over any
// RoundTripper; with both on, the Cookie header http.Client's jar sets wins name by name.
type Cookie struct {
	Name  string
	Value string
	// Domain is the host that set the cookie (HostOnly) or its Domain attribute.
	Domain   string
	HostOnly bool
	Path     string
	Secure   bool
	HTTPOnly bool
	// SameSite is "Strict", "Lax" or "None" as the server gave it, or "".
	SameSite string
	// Expires is the zero time for a session cookie.
	Expires time.Time
}

type rawCookie struct {
	Name      string  `json:"name"`
	Value     string  `json:"value"`
	Domain    string  `json:"domain"`
	HostOnly  bool    `json:"host_only"`
	Path      string  `json:"path"`
	Secure    bool    `json:"secure"`
	HTTPOnly  bool    `json:"http_only"`
	SameSite  *string `json:"same_site"`
	ExpiresMs *int64  `json:"expires_ms"`
}

// Cookies lists the unexpired cookies in the engine's jar (none while cookies.enabled is false).
func (t *Transport) Cookies() ([]Cookie, error) {
	t.life.RLock()
	if t.freed {
		t.life.RUnlock()
		return nil, errClosed
	}
	js := capi.CookiesJSON(t.client)
	t.life.RUnlock()
	var raw []rawCookie
	if err := json.Unmarshal([]byte(js), &raw); err != nil {
		return nil, err
	}
	out := make([]Cookie, 0, len(raw))
	for _, r := range raw {
		c := Cookie{Name: r.Name, Value: r.Value, Domain: r.Domain, HostOnly: r.HostOnly,
			Path: r.Path, Secure: r.Secure, HTTPOnly: r.HTTPOnly}
		if r.SameSite != nil {
			c.SameSite = *r.SameSite
		}
		if r.ExpiresMs != nil {
			c.Expires = time.UnixMilli(*r.ExpiresMs)
		}
		out = append(out, c)
	}
	return out, nil
}

// ClearCookies empties the engine's cookie jar.
func (t *Transport) ClearCookies() {
	t.life.RLock()
	defer t.life.RUnlock()
	if !t.freed {
		capi.ClearCookies(t.client)
	}
}
