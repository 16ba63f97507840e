package wirecore_test

import (
	"encoding/json"
	"net/http"
	"testing"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// req.Host names the host on HTTP/2 (the :authority) as on HTTP/1.1 (the Host header), as
// net/http's own transport does; the connection still goes to req.URL.
func TestRequestHostIsSentOnH1AndH2(t *testing.T) {
	tr := newTransport(t, wirecore.Config{})
	c := &http.Client{Transport: tr}
	for _, base := range []string{server.HTTP, server.HTTPS} {
		req, err := http.NewRequest("GET", base+"/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "api.example.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		var doc struct {
			Host    string `json:"host"`
			Version string `json:"version"`
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{server.HTTP: "HTTP/1.1", server.HTTPS: "HTTP/2.0"}[base]
		if doc.Version != want || doc.Host != "api.example.test" {
			t.Errorf("%s: host %q over %s, want api.example.test over %s", base, doc.Host, doc.Version, want)
		}
	}
}
