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
	go t.deliverDeadLetters(fn)
	return nil
}

func (t *transport) deliverDeadLetters(fn func(DeadLetter)) {
	defer t.letters.Done()
	for {
		t.life.RLock()
		if t.freed {
			t.life.RUnlock()
			return
		}
		got, closed := capi.PollDeadLetters(t.client, 200)
		t.life.RUnlock()
		for _, l := range got {
			fn(DeadLetter(l))
		}
		if closed {
			return
		}
	}
}
