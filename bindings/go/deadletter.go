package wirecore

import "github.com/wirecore/wirecore/bindings/go/internal/capi"

// DeadLetter is a request that failed after every retry the policy allowed: an error, or a
// status Config.Retry.RetryOnStatus lists (ErrorCode is then "status").
type DeadLetter struct {
	Method string
	// URL is the request's URL without userinfo.
	URL string
	// Headers are the request's own headers, without Authorization, Proxy-Authorization and
	// Cookie.
	Headers [][2]string
	// Body is the request body when it was buffered and at most dead_letter.max_body_bytes.
	Body []byte
	// ErrorCode is the error's code ("connect", "timeout.total" ...), or "status".
	ErrorCode string
	Message   string
	// Status is the last answer's status, or 0.
	Status   int
	Attempts int
	// TimeMs is when it failed, milliseconds since the Unix epoch.
	TimeMs uint64
}

// OnDeadLetter calls fn with each request that fails after every retry, on a goroutine of the
// Transport (never on an engine thread), one letter at a time; the goroutine ends when the
// Transport is closed. Letters wait in a queue of dead_letter.queue; more are dropped (counted
// in Stats().DeadLetter.Dropped). Call it once, before sending.
func (t *Transport) OnDeadLetter(fn func(DeadLetter)) error {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.freed {
		return errClosed
	}
	capi.ListenDeadLetters(t.client)
	t.letters.Add(1)
	go deliver(t.transport, capi.PollDeadLetters, func(l capi.DeadLetter) DeadLetter { return DeadLetter(l) }, fn)
	return nil
}

// deliver runs on a goroutine of the Transport (OnDeadLetter, OnSpan): it waits on the engine's
// queue with poll and hands each item, converted, to fn, until the queue is closed or the
// Transport freed.
func deliver[T, U any](t *transport, poll func(*capi.Client, uint64) ([]T, bool), conv func(T) U, fn func(U)) {
	defer t.letters.Done()
	for {
		t.life.RLock()
		if t.freed {
			t.life.RUnlock()
			return
		}
		got, closed := poll(t.client, 200)
		t.life.RUnlock()
		for _, x := range got {
			fn(conv(x))
		}
		if closed {
			return
		}
	}
}
