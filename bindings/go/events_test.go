package wirecore_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// wirecore.Events reads a GET's event stream across reconnections: each one sends the last
// id seen (Last-Event-ID) after the server's retry:, and the 204 ends the stream.
func TestEventsReconnectWithLastEventID(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	resp, err := c.Get(server.HTTP + "/sse?events=2&total=5&retry=10&cut=1")
	if err != nil {
		t.Fatal(err)
	}
	events, err := wirecore.Events(resp)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	var ids, resumed []string
	for i := 0; i < 20 && events.Next(); i++ {
		ev := events.Event()
		var d struct {
			N    int    `json:"n"`
			Last string `json:"last_event_id"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil || ev.Event != "message" || ev.Retry != nil {
			t.Fatalf("event %+v: %v", ev, err)
		}
		ids = append(ids, ev.ID)
		resumed = append(resumed, d.Last)
	}
	if err := events.Err(); err != nil {
		t.Fatal(err)
	}
	if got := len(ids); got != 5 || ids[4] != "4" || resumed[2] != "1" || resumed[4] != "3" {
		t.Fatalf("ids %v, resumed after %v", ids, resumed)
	}
	if n := requestsSeen(t); n != 4 {
		t.Fatalf("the server saw %v requests, want 3 connections and the 204", n)
	}
}

// The request's context cancels a Next waiting for an event; a body that is not the
// Transport's stream is refused.
func TestEventsContextCancelsAWaitingNext(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", server.HTTP+"/sse?events=1&delay_ms=60000", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events, err := wirecore.Events(resp)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	go func() { done <- events.Next() }()
	cancel()
	select {
	case ok := <-done:
		if ok || !errors.Is(events.Err(), context.Canceled) && !errors.Is(events.Err(), wirecore.ErrCancelled) {
			t.Fatalf("Next %v, Err %v", ok, events.Err())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Next did not return after the context was cancelled")
	}
	events.Close()
	plain := &http.Response{Body: http.NoBody}
	if _, err := wirecore.Events(plain); !errors.Is(err, wirecore.ErrInvalidRequest) {
		t.Fatalf("a foreign body: %v", err)
	}
}
