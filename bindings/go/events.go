package wirecore

import (
	"net/http"
	"time"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

// Event is one Server-Sent Event, parsed by the engine.
type Event struct {
	// Event is the event: field; "message" when none was given.
	Event string
	// Data is the data: lines joined with "\n".
	Data string
	// ID is the last event ID at dispatch ("" when none).
	ID string
	// Retry is a retry: given with this event; nil when none.
	Retry *time.Duration
}

// EventReader reads a response's Server-Sent Events:
//
//	events, err := wirecore.Events(resp)
//	for events.Next() {
//		ev := events.Event()
//	}
//	err = events.Err()
//
// A GET's event stream reconnects when it ends or breaks, after the server's retry:, with
// Last-Event-ID (the same rules in every wirecore language). No OS thread waits for an event.
// Use it from one goroutine; the request's context cancels a waiting Next.
type EventReader struct {
	b   *body
	sse *capi.SSE
	ev  Event
	err error
}

// Events reads the rest of resp's body (a response of a wirecore Transport) as events.
//
// Errors: an *Error coded "invalid_request" when the body is not the Transport's stream, or
// the body's failure.
func Events(resp *http.Response) (*EventReader, error) {
	b, ok := resp.Body.(*body)
	if !ok {
		return nil, &Error{Code: "invalid_request", Message: "wirecore.Events: the response body is not " +
			"a streaming wirecore body (an event stream from a wirecore Transport, unwrapped)"}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	if b.resp == nil {
		return nil, errBodyClosed
	}
	b.t.gate.enter()
	s, rc, e := capi.ResponseEvents(b.resp)
	b.t.gate.leave()
	if rc != capi.OK {
		return nil, errorOf(rc, e)
	}
	return &EventReader{b: b, sse: s}, nil
}

// Next waits for the next event; false at the end of the stream or on an error (see Err).
func (r *EventReader) Next() bool {
	if r.err != nil || r.sse == nil {
		return false
	}
	t := r.b.t
	t.life.RLock()
	rc, e := capi.CodeFromString("closed"), (*capi.Err)(nil)
	if !t.freed {
		rc, e = capi.SSENextQueue(r.sse, t.queue, r.b.id)
	}
	t.life.RUnlock()
	if rc != capi.OK {
		r.err = errorOf(rc, e)
		return false
	}
	var c capi.Completion
	select {
	case c = <-r.b.ch:
	case <-r.b.ctx.Done():
		r.err = fromContext(r.b.ctx)
		capi.SSEFree(r.sse) // the read ends with cancelled; its completion still comes
		r.sse = nil
		c = <-r.b.ch
		capi.FreeErr(c.Err)
		return false
	}
	if c.Code != capi.OK {
		capi.FreeErr(c.Err)
	}
	ev, end, rc, e := capi.SSETake(r.sse)
	switch {
	case rc != capi.OK:
		r.err = errorOf(rc, e)
		return false
	case end:
		return false
	}
	r.ev = Event{Event: ev.Event, Data: ev.Data, ID: ev.ID}
	if ev.Retry >= 0 {
		d := time.Duration(ev.Retry) * time.Millisecond
		r.ev.Retry = &d
	}
	return true
}

// Event is the event Next found.
func (r *EventReader) Event() Event { return r.ev }

// Err is the failure that ended the stream (nil at a normal end).
func (r *EventReader) Err() error { return r.err }

// Close stops the stream and closes the response body.
func (r *EventReader) Close() error {
	if r.sse != nil {
		capi.SSEFree(r.sse)
		r.sse = nil
	}
	return r.b.Close()
}
