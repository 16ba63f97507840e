package wirecore_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// Every key of the engine's stats snapshot (with every policy on, so each section is filled)
// has a field in the typed Stats, recursively.
func TestStatsHasEveryKeyOfTheSnapshot(t *testing.T) {
	tr := newTransport(t, wirecore.Config{
		RateLimit:   wirecore.RateLimitConfig{Enabled: true, Requests: 1000, PerMs: 1000},
		Breaker:     wirecore.BreakerConfig{Enabled: true, ConsecutiveFailures: 3},
		Concurrency: wirecore.ConcurrencyConfig{Enabled: true, InitialLimit: 10},
		Services: map[string]wirecore.ServiceConfig{
			"svc": {Endpoints: []wirecore.EndpointConfig{{URL: server.HTTP}}},
		},
	})
	c := &http.Client{Transport: tr}
	control(t, "POST", "/_control/script", `{"path":"/s/st","replies":[{"status":503},{"status":200}]}`)
	for _, url := range []string{server.HTTP + "/bytes/1", server.HTTP + "/s/st", "http://svc/bytes/1"} {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var snapshot map[string]any
	if err := json.Unmarshal([]byte(wirecore.StatsJSON(tr)), &snapshot); err != nil {
		t.Fatal(err)
	}
	keys := 0
	var walk func(v any, ty reflect.Type, path string)
	walk = func(v any, ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer {
			ty = ty.Elem()
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		switch ty.Kind() {
		case reflect.Map:
			for k, e := range obj {
				walk(e, ty.Elem(), path+k+".")
			}
		case reflect.Struct:
			fields := map[string]reflect.Type{}
			var collect func(ty reflect.Type)
			collect = func(ty reflect.Type) {
				for i := range ty.NumField() {
					f := ty.Field(i)
					name := strings.Split(f.Tag.Get("json"), ",")[0]
					if f.Anonymous && name == "" {
						collect(f.Type) // encoding/json flattens embedded structs
						continue
					}
					fields[name] = f.Type
				}
			}
			collect(ty)
			for k, e := range obj {
				keys++
				ft, ok := fields[k]
				if !ok {
					t.Errorf("stats key %s%s has no field in Go's %s", path, k, ty.Name())
					continue
				}
				walk(e, ft, path+k+".")
			}
		default:
			t.Errorf("stats %s is an object, Go's field is %s", path, ty)
		}
	}
	walk(snapshot, reflect.TypeFor[wirecore.Stats](), "")
	if _, ok := snapshot["resilience"]; !ok || keys < 40 {
		t.Fatalf("checked %d keys; snapshot %v", keys, snapshot)
	}
}
