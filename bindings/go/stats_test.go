package wirecore_test

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"slices"
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

// The typed Stats declares exactly the core's fields: tests/stats-fields.json, generated from
// wirecore::Stats (`make stats-fields`), where {"*": x} is a map keyed by data (origins, codes).
func TestStatsDeclaresExactlyTheCoreFields(t *testing.T) {
	raw, err := os.ReadFile("../../tests/stats-fields.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	var diff []string
	var walk func(ty reflect.Type, shape any, path string)
	walk = func(ty reflect.Type, shape any, path string) {
		for ty.Kind() == reflect.Pointer {
			ty = ty.Elem()
		}
		fields, ok := shape.(map[string]any)
		if !ok {
			if ty.Kind() == reflect.Struct || ty.Kind() == reflect.Map {
				diff = append(diff, path+": Go has "+ty.Kind().String()+", the core a value")
			}
			return
		}
		if inner, ok := fields["*"]; ok && len(fields) == 1 {
			if ty.Kind() != reflect.Map {
				diff = append(diff, path+": the core has a map, Go "+ty.String())
				return
			}
			walk(ty.Elem(), inner, path+"*.")
			return
		}
		if ty.Kind() != reflect.Struct {
			diff = append(diff, path+": the core has a record, Go "+ty.String())
			return
		}
		declared := map[string]reflect.Type{}
		var collect func(ty reflect.Type)
		collect = func(ty reflect.Type) {
			for i := range ty.NumField() {
				f := ty.Field(i)
				name := strings.Split(f.Tag.Get("json"), ",")[0]
				if f.Anonymous && name == "" {
					collect(f.Type)
					continue
				}
				declared[name] = f.Type
			}
		}
		collect(ty)
		for k, v := range fields {
			if ft, ok := declared[k]; ok {
				walk(ft, v, path+k+".")
			} else {
				diff = append(diff, path+k+" is not declared in Go's "+ty.Name())
			}
		}
		for k := range declared {
			if _, ok := fields[k]; !ok {
				diff = append(diff, path+k+" is declared in Go's "+ty.Name()+" but not a core field")
			}
		}
	}
	walk(reflect.TypeFor[wirecore.Stats](), want, "")
	slices.Sort(diff)
	if len(diff) > 0 {
		t.Fatalf("Go's Stats differs from tests/stats-fields.json:\n%s", strings.Join(diff, "\n"))
	}
}
