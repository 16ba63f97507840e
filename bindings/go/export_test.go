package wirecore

import "github.com/wirecore/wirecore/bindings/go/internal/capi"

// NewTransportEngineRedirects is NewTransportJSON without redirect.max forced to 0: the
// scenario runner replays the engine's own redirect rules, which http.Client users never meet.
var NewTransportEngineRedirects = newTransport

// StatsJSON is the engine's raw stats snapshot, to check the typed Stats against.
func StatsJSON(t *Transport) string {
	t.life.RLock()
	defer t.life.RUnlock()
	return capi.StatsJSON(t.client)
}

// DirectWaits counts the requests that waited in the engine, alone in flight (waitDirect).
func DirectWaits() int64 { return directWaits.Load() }

// TakeHint is the transport's guess for Take's buffer (head and whole body).
func TakeHint(t *Transport) int64 { return t.takeHint.Load() }

// DirectSlices counts the waits in the engine of requests that waited directly.
func DirectSlices() int64 { return directSlices.Load() }

// SetDirectWait sets how long one wait in the engine lasts and a hook run before each (nil:
// none); it returns the function that restores both.
func SetDirectWait(ms int64, before func(queued func() bool)) func() {
	oldMs, oldBefore := directSliceMs.Swap(ms), directBeforeWait.Swap(&before)
	if before == nil {
		directBeforeWait.Store(nil)
	}
	return func() {
		directSliceMs.Store(oldMs)
		directBeforeWait.Store(oldBefore)
	}
}
