// Package wirecore is an http.RoundTripper backed by the wirecore engine (Rust, over cgo).
//
//	t, err := wirecore.NewTransport(wirecore.Config{Pool: wirecore.PoolConfig{MaxIdlePerHost: 8}})
//	client := &http.Client{Transport: t}
//
// The Transport never follows redirects: http.Client does (CheckRedirect, Jar, resp.Request of
// the last hop), so the engine's redirect.max is always 0 under a Transport.
//
// Timeouts: prefer a per-request context deadline (or Config.Timeouts) to http.Client.Timeout.
// For any RoundTripper but its own, http.Client implements Timeout with a goroutine, a timer and
// two channels per request (C=1 h1: 44 µs of CPU per request, 31 µs with a context deadline, 28
// µs with neither; bench/results/2026-12-06-go-3.md section 7).
//
// No OS thread waits per request: one cgo call submits a request, and one poller goroutine
// per Transport drains a completion queue in batches and wakes the waiting goroutines; when
// the queue is empty the poller parks in Go's netpoller on the queue's wake-up pipe.
package wirecore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

// bufferedBodyMax is the largest request body (with a known length) sent as one buffer, which
// the engine can replay for retries and redirects; larger or unknown-length bodies stream.
const bufferedBodyMax = 1 << 20

// maxEngineTimeout caps the per-request timeout handed to the engine: a context deadline
// further away (context.WithTimeout(ctx, math.MaxInt64)) is still enforced here, by ctx.
const maxEngineTimeout = 365 * 24 * time.Hour // the engine's bound on every duration

// deadlineGrace is how long a request whose context deadline passed waits for the engine's
// own timeout (it got the same deadline) before it is cancelled.
const deadlineGrace = 100 * time.Millisecond

// takeHintMax bounds the buffer guessed for a response head and a small body (the engine
// prefetches bodies up to 64 KiB).
const takeHintMax = 72 << 10

// takeSlack is what the guess adds to the largest recent response: responses of one endpoint
// differ by a few bytes (a date, a length). takeWindow is how many responses "recent" is.
const (
	takeSlack  = 64
	takeWindow = 64
)

// sharedHeadMax is the largest whole body whose buffer the response's header strings may share
// (see response).
const sharedHeadMax = 8 << 10

// gateSize is how many goroutines may be inside a request-path cgo call at once, at least:
// GOMAXPROCS when that is more (see newGate).
const gateSize = 8

// gate bounds the goroutines inside a request-path cgo call at once. A cgo call that runs long
// (a contended lock in the engine) makes the Go scheduler start another OS thread; the gate
// caps that at its size, whatever the number of goroutines. Entering and leaving are an atomic
// add each while it is not full (a channel's lock per crossing was 4 lock round trips per
// request, on one lock every P shares); past its size, goroutines wait for a token.
type gate struct {
	n    atomic.Int64 // inside, plus waiting for a token
	size int64
	wake chan struct{}
}

// newGate sizes the gate at gateSize or GOMAXPROCS, whichever is more: a smaller gate than
// GOMAXPROCS would make goroutines running at once on their own Ps queue for it.
func newGate() *gate {
	return &gate{size: int64(max(gateSize, runtime.GOMAXPROCS(0))), wake: make(chan struct{}, 1024)}
}

func (g *gate) enter() {
	if g.n.Add(1) > g.size {
		<-g.wake
	}
}

// leave hands the place to one waiter when there is one (it has counted itself in n, and its
// receive is coming).
func (g *gate) leave() {
	if g.n.Add(-1) >= g.size {
		g.wake <- struct{}{}
	}
}

// Transport is an http.RoundTripper over one wirecore client (a pool, a DNS cache, counters).
// It is safe for concurrent use. Call Close when done; a Transport that becomes unreachable
// is closed by a cleanup once its last open response body is closed (or itself collected).
type Transport struct {
	*transport
	cleanup runtime.Cleanup
}

type transport struct {
	client *capi.Client
	queue  *capi.Queue

	mu      sync.Mutex
	pending map[uintptr]chan capi.Completion
	nextID  uintptr
	closed  bool
	// orphaned: the Transport was collected; the last unregister closes the engine.
	orphaned bool

	// life guards client and queue: every cgo call on them holds it for reading; close frees
	// them under the write lock.
	life  sync.RWMutex
	freed bool

	// gate bounds the goroutines inside a request-path cgo call at once.
	gate *gate

	tls tlsStates
	// refuseDowngrade: redirect.allow_downgrade is false (http.Client's hops are checked here).
	refuseDowngrade bool
	// hostRedirects: http.Client follows redirects, never the engine (see engineOptions).
	hostRedirects bool
	inflight      atomic.Int64
	takeHint      atomic.Int64 // buffer size for a response head and small body (capi.Take)
	takeSeen      atomic.Int64 // the largest response taken in this window (see sized)
	takeCount     atomic.Int64 // responses taken
	pollerEnd     chan struct{}
	// direct: a request goroutine waits in wirecore_queue_wait (see waitDirect); at most one,
	// which owns dbuf and dout.
	direct    atomic.Bool
	dbuf      *capi.CompletionBuffer
	dout      []capi.Completion
	closeOnce sync.Once
	// letters counts the OnDeadLetter and OnSpan goroutines; close waits for them.
	letters sync.WaitGroup
}

// NewTransport builds a Transport from cfg. cfg.Redirect.Max is ignored: http.Client follows
// redirects (see the package doc).
//
// Errors: an *Error with code "invalid_config" naming the field.
func NewTransport(cfg Config) (*Transport, error) {
	js, err := cfg.JSON()
	if err != nil {
		return nil, &Error{Code: "invalid_config", Message: err.Error()}
	}
	return NewTransportJSON(js)
}

// NewTransportJSON builds a Transport from the core's JSON config ("" for every default), with
// redirect.max forced to 0 (http.Client follows redirects). The rest of redirect.* still
// applies to the hops http.Client makes: allow_downgrade false fails an https → http hop, and
// the client's default headers stay with their origin unless forward_headers lets them go.
func NewTransportJSON(config string) (*Transport, error) {
	js, refuseDowngrade := withoutRedirects(config)
	t, err := newTransport(js)
	if err == nil {
		t.refuseDowngrade = refuseDowngrade
		t.hostRedirects = true
	}
	return t, err
}

// withoutRedirects sets redirect.max to 0 in a JSON config and reads allow_downgrade; JSON
// that is not an object is left for the engine to reject with its own message.
func withoutRedirects(config string) (string, bool) {
	if strings.TrimSpace(config) == "" {
		return `{"redirect":{"max":0}}`, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(config), &top) != nil || top == nil {
		return config, false
	}
	redirect := map[string]json.RawMessage{}
	if raw, ok := top["redirect"]; ok && json.Unmarshal(raw, &redirect) != nil {
		return config, false
	}
	if redirect == nil {
		redirect = map[string]json.RawMessage{}
	}
	var allow *bool
	if raw, ok := redirect["allow_downgrade"]; ok && json.Unmarshal(raw, &allow) != nil {
		return config, false
	}
	redirect["max"] = json.RawMessage("0")
	top["redirect"], _ = json.Marshal(redirect)
	out, err := json.Marshal(top)
	if err != nil {
		return config, false
	}
	return string(out), allow != nil && !*allow
}

func newTransport(config string) (*Transport, error) {
	c, rc, e := capi.NewClient(config)
	if rc != capi.OK {
		code, msg := capi.ErrorInfo(e)
		return nil, &Error{Code: code, Message: msg}
	}
	in := &transport{
		client:    c,
		queue:     capi.NewQueue(),
		pending:   make(map[uintptr]chan capi.Completion),
		gate:      newGate(),
		pollerEnd: make(chan struct{}),
		dbuf:      capi.NewCompletionBuffer(directMax),
		dout:      make([]capi.Completion, directMax),
	}
	in.takeHint.Store(2048)
	go in.poll()
	t := &Transport{transport: in}
	// The poller and open bodies hold only the inner transport, so an unreachable Transport
	// is collected; its native client is freed once no body is open any more.
	t.cleanup = runtime.AddCleanup(t, func(in *transport) { in.orphan() }, in)
	return t, nil
}

// poll drains the completion queue in batches. When the queue is empty it waits on the
// queue's wake-up pipe through Go's netpoller, so no OS thread is blocked in wirecore.
func (t *transport) poll() {
	defer close(t.pollerEnd)
	buf := capi.NewCompletionBuffer(256)
	defer buf.Free()
	out := make([]capi.Completion, 256)
	if wake := t.notifyFile(); wake != nil {
		defer wake.Close()
		if raw, err := wake.SyscallConn(); err == nil && t.pollPipe(raw, buf, out) {
			return
		}
	}
	for {
		n := capi.Wait(t.queue, buf, out, -1)
		if n < 0 {
			return
		}
		t.dispatch(out[:n])
		t.kickDirect(n)
	}
}

// kickDirect tells a goroutine waiting in the engine (waitDirect) to look at its channel again
// after the poller handed out n completions: one may be that goroutine's, taken by the poller
// just before the goroutine blocked (its completion then wrote the pipe's byte, no thread being
// blocked yet), and nothing else would wake it before its wait times out. A kick that finds
// nobody blocked makes the next wait return at once.
func (t *transport) kickDirect(n int) {
	if n > 0 && t.direct.Load() {
		capi.Kick(t.queue)
	}
}

// pollPipe drains the queue each time its pipe is readable; false when the pipe broke (the
// caller then blocks a thread in Wait instead), true once the queue is closed and empty.
//
// It is one RawConn.Read for the poller's whole life: a new Read forgets readiness the
// netpoller saw before it, so each wait would need a read that finds the pipe empty first;
// within one Read, readiness seen while the callback runs is kept for its next wait. A
// TryTake that leaves the queue empty arms the pipe (the next completion writes one byte),
// so a wake-up costs one read of the pipe and one TryTake.
func (t *transport) pollPipe(raw syscall.RawConn, buf *capi.CompletionBuffer, out []capi.Completion) bool {
	scratch := make([]byte, 64)
	closed := false
	_ = raw.Read(func(fd uintptr) bool {
		switch n, err := syscall.Read(int(fd), scratch); {
		case err == nil && n == 0, err != nil && err != syscall.EAGAIN && err != syscall.EINTR:
			return true // broken
		}
		for {
			n := capi.TryTake(t.queue, buf, out)
			if n < 0 {
				closed = true
				return true
			}
			t.dispatch(out[:n])
			t.kickDirect(n)
			if n < len(out) {
				// It took the last one, and armed the pipe.
				return false
			}
		}
	})
	return closed
}

// dispatch hands each completion to its waiter.
func (t *transport) dispatch(cs []capi.Completion) {
	if len(cs) == 0 {
		return
	}
	t.mu.Lock()
	for _, c := range cs {
		if ch, ok := t.pending[c.ID]; ok {
			ch <- c // buffered: one operation at a time per id
		} else {
			// Abandoned (its waiter gave up at Close): free what it carries.
			capi.FreeResponse(c.Response)
			capi.FreeErr(c.Err)
		}
	}
	t.mu.Unlock()
}

// notifyFile is a pollable dup of the queue's wake-up pipe, or nil (then the poller blocks
// one thread in wirecore_queue_wait instead).
func (t *transport) notifyFile() *os.File {
	fd := capi.NotifyFD(t.queue)
	if fd < 0 {
		return nil
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil
	}
	syscall.CloseOnExec(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		syscall.Close(dup)
		return nil
	}
	return os.NewFile(uintptr(dup), "wirecore-queue")
}

// chanPool recycles the one-slot channels completions arrive on.
var chanPool = sync.Pool{New: func() any { return make(chan capi.Completion, 1) }}

// recycle returns an unregistered id's channel to the pool. After unregister no completion
// can be sent on it any more; one still buffered (Close's "closed") keeps it out of the pool.
func recycle(ch chan capi.Completion) {
	if len(ch) == 0 {
		chanPool.Put(ch)
	}
}

// register reserves an id whose completions arrive on the returned channel.
func (t *transport) register() (uintptr, chan capi.Completion, bool) {
	ch := chanPool.Get().(chan capi.Completion)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.orphaned {
		return 0, nil, false
	}
	t.nextID++
	t.pending[t.nextID] = ch
	t.inflight.Add(1)
	return t.nextID, ch, true
}

func (t *transport) unregister(id uintptr) {
	t.mu.Lock()
	if _, ok := t.pending[id]; ok {
		delete(t.pending, id)
		t.inflight.Add(-1)
	}
	last := t.orphaned && t.inflight.Load() == 0
	t.mu.Unlock()
	if last {
		go t.close(0)
	}
}

// orphan runs when the Transport was collected: the engine lives on while a response body
// (or a request body pump) still uses it, and the last one to finish closes it.
func (t *transport) orphan() {
	t.mu.Lock()
	t.orphaned = true
	idle := t.inflight.Load() == 0
	t.mu.Unlock()
	if idle {
		t.close(0)
	}
}

// reqBody closes a request body once, whoever gets there first (RoundTrip on a failure, or
// the pump when the body ends): net/http's RoundTripper contract.
type reqBody struct {
	body io.ReadCloser
	once sync.Once
}

func (r *reqBody) close() {
	if r != nil && r.body != nil {
		r.once.Do(func() { r.body.Close() })
	}
}

func errorOf(code int, e *capi.Err) *Error {
	if e == nil {
		c := capi.CodeString(code)
		return &Error{Code: c, Message: c}
	}
	c, msg := capi.ErrorInfo(e)
	return &Error{Code: c, Message: msg}
}

var errClosed = &Error{Code: "closed", Message: "the transport is closed"}

// RoundTrip sends one request: http.Client calls it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	// A Transport mid-request is not orphaned (its cleanup would refuse the body pump's id).
	runtime.KeepAlive(t)
	return resp, err
}

func (t *transport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// nil without a body: a GET allocates none.
	var rb *reqBody
	if req.Body != nil {
		rb = &reqBody{body: req.Body}
	}
	closeBody := rb.close
	if req.URL == nil {
		closeBody()
		return nil, &Error{Code: "invalid_url", Message: "the request has no URL"}
	}
	if err := ctx.Err(); err != nil {
		closeBody()
		return nil, fromContext(ctx)
	}
	if t.refuseDowngrade && req.Response != nil && req.Response.Request != nil &&
		strings.EqualFold(req.Response.Request.URL.Scheme, "https") && strings.EqualFold(req.URL.Scheme, "http") {
		closeBody()
		return nil, &Error{Code: "redirect_downgrade", Message: "refused the redirect from " +
			req.Response.Request.URL.Redacted() + " to " + req.URL.Redacted() + " (redirect.allow_downgrade is false)"}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hdrs, count, herr := packHeaders(req)
	if herr != nil {
		closeBody()
		return nil, herr
	}
	body, mode, berr := requestBody(req)
	if berr != nil {
		closeBody()
		return nil, &Error{Code: "io", Message: "reading the request body: " + berr.Error(), cause: berr}
	}
	opts, oerr := engineOptions(ctx, t.hostRedirects)
	if oerr != nil {
		closeBody()
		return nil, oerr
	}
	var timeoutMs uint64
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			closeBody()
			return nil, fromContext(ctx)
		}
		timeoutMs = engineTimeoutMs(left)
	}
	if mode == capi.BodyStream && req.ContentLength > 0 {
		// A known length goes out as Content-Length, not chunked (S3 presigned PUTs
		// refuse chunked uploads).
		hdrs, count = appendHeader(hdrs, count, "content-length", strconv.FormatInt(req.ContentLength, 10))
	}
	t.life.RLock()
	id, ch, ok := t.register()
	if !ok || t.freed {
		t.life.RUnlock()
		closeBody()
		return nil, errClosed
	}
	var pumpID uintptr
	var pumpCh chan capi.Completion
	if mode == capi.BodyStream {
		// Registered now, while the Transport is surely reachable: an orphaned transport
		// refuses new ids.
		if pumpID, pumpCh, ok = t.register(); !ok {
			t.unregister(id)
			t.life.RUnlock()
			closeBody()
			return nil, errClosed
		}
	}
	t.gate.enter()
	task, writer, rc, e := capi.Submit(t.client, t.queue, id, method, req.URL.String(), hdrs,
		count, body, mode, timeoutMs, ctx.Done() != nil, leftOrigin(req), opts)
	t.gate.leave()
	t.life.RUnlock()
	if rc != capi.OK {
		t.unregister(id)
		if pumpCh != nil {
			t.unregister(pumpID)
		}
		closeBody()
		return nil, errorOf(rc, e)
	}
	switch {
	case writer != nil:
		go t.pump(rb, writer, pumpID, pumpCh)
	case pumpCh != nil:
		t.unregister(pumpID)
		closeBody()
	default:
		closeBody()
	}
	var c capi.Completion
	var ctxErr *Error
	if directWait && t.inflight.Load() == 1 && runtime.GOMAXPROCS(0) > 1 && t.direct.CompareAndSwap(false, true) {
		var got bool
		c, got = t.waitDirect(ctx, ch)
		t.direct.Store(false)
		if got {
			goto done
		}
		// ctx ended first (the select below gives the engine its grace, or cancels), or the
		// request outlasted directSlicesMax waits.
	}
	select {
	case c = <-ch:
	case <-ctx.Done():
		// The engine got the same deadline: let it report its own timeout, so its counters
		// and breakers see a timeout rather than a cancellation.
		if timeoutMs > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			select {
			case c = <-ch:
				goto done
			case <-time.After(deadlineGrace):
			}
		}
		// Cancel-by-drop in the engine; the completion still comes, and owns what it carries.
		capi.Cancel(task)
		ctxErr = fromContext(ctx)
		c = <-ch
	}
done:
	if task != nil {
		t.gate.enter()
		capi.FreeTask(task)
		t.gate.leave()
	}
	if ctxErr != nil {
		t.unregister(id)
		capi.FreeResponse(c.Response)
		capi.FreeErr(c.Err)
		// A pump blocked in Read is woken by the close.
		closeBody()
		return nil, ctxErr
	}
	if c.Code != capi.OK {
		t.unregister(id)
		recycle(ch)
		closeBody()
		err := errorOf(c.Code, c.Err)
		if err.Timeout() && ctx.Err() != nil {
			err.cause = ctx.Err()
		}
		return nil, err
	}
	return t.response(req, c.Response, id, ch), nil
}

// directMax is how many completions a direct waiter takes at once.
const directMax = 64

// directSlicesMax is how many waits in the engine that time out a request makes before it
// waits like the others (on its channel, and its context): what the direct wait saves, a few
// µs, matters for short requests only. directSliceMs bounds one wait, because a context's end
// is seen between waits: within 10 ms during a request's first 20 ms alone in flight, at once
// afterwards. (A completion the poller took just before the waiter blocked comes with a kick:
// kickDirect.)
// Not shorter: a timer that expires before the kernel's next tick (4 ms at HZ 250) is armed and
// cancelled in the hardware, which in a VM cost C=1 h1 5 µs of CPU and of p50 per request with
// 1 ms waits against 5 ms ones (bench/results/2026-12-06-go-3.md section 7).
const directSlicesMax = 2

// directSliceMs is a var for tests (a long one shows that a waiter whose completion the poller
// took is kicked, not left to time out).
var directSliceMs = func() (v atomic.Int64) { v.Store(10); return }()

// directBeforeWait, when set (tests), runs before each wait in the engine with a function that
// reports whether the waiter's completion is already in its channel.
var directBeforeWait atomic.Pointer[func(queued func() bool)]

// directWait lets a request alone in flight wait in the engine (tests turn it off to compare).
var directWait = true

// directWaits counts the requests that waited directly, directSlices their waits in the engine
// (tests read them).
var directWaits, directSlices atomic.Int64

// waitDirect waits for ch's completion inside wirecore_queue_wait, on this goroutine's thread:
// the engine thread that completes the request wakes this thread, where the poller's path is a
// pipe byte, Go's netpoller (another thread when GOMAXPROCS > 1), the poller goroutine and a
// channel hop. Only a request alone in flight waits so, one at a time (one OS thread at most):
// completions of requests started meanwhile come to this waiter too, and it hands them to their
// waiters as the poller would. false when ctx ended first, or after directSlicesMax waits that
// timed out.
//
// Not with GOMAXPROCS 1: a P whose only M sits in a cgo call for more than a sysmon tick is
// handed to another M when no P is idle, a thread wake-up more per request than it saves
// (bench/results/2026-12-06-go-3.md).
func (t *transport) waitDirect(ctx context.Context, ch chan capi.Completion) (capi.Completion, bool) {
	directWaits.Add(1)
	done := ctx.Done()
	for timeouts := 0; ; {
		select {
		case c := <-ch:
			return c, true
		case <-done:
			return capi.Completion{}, false
		default:
		}
		if timeouts == directSlicesMax {
			return capi.Completion{}, false
		}
		directSlices.Add(1)
		if f := directBeforeWait.Load(); f != nil {
			(*f)(func() bool { return len(ch) > 0 })
		}
		t.life.RLock()
		n := -1
		if !t.freed {
			n = capi.Wait(t.queue, t.dbuf, t.dout, directSliceMs.Load())
		}
		t.life.RUnlock()
		if n < 0 {
			// Closed: close hands every waiter "closed".
			return <-ch, true
		}
		if n == 0 {
			timeouts++
		}
		t.dispatch(t.dout[:n])
	}
}

// leftOrigin reports whether req is a redirect hop (http.Client sets req.Response) of a chain
// that has left its first request's origin: from then on the client's default headers stay
// behind, even back at the first origin, as when the engine follows redirects itself.
func leftOrigin(req *http.Request) bool {
	if req.Response == nil {
		return false
	}
	first := req
	for first.Response != nil && first.Response.Request != nil && first.Response.Request != first {
		first = first.Response.Request
	}
	for r := req; r != first && r.Response != nil && r.Response.Request != nil; r = r.Response.Request {
		if !sameOrigin(r.URL, first.URL) {
			return true
		}
	}
	return false
}

// sameOrigin compares scheme, host and port (a default port written out or not).
func sameOrigin(a, b *url.URL) bool {
	if a == nil || b == nil {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// engineTimeoutMs converts the time left before a context deadline to whole milliseconds
// (rounded up), capped at maxEngineTimeout.
func engineTimeoutMs(left time.Duration) uint64 {
	if left >= maxEngineTimeout {
		return uint64(maxEngineTimeout / time.Millisecond)
	}
	return uint64((left + time.Millisecond - 1) / time.Millisecond)
}

// appendHeader adds one packed header field (see packHeaders).
func appendHeader(b []byte, count int, name, value string) ([]byte, int) {
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, value...)
	b = append(b, 0)
	return b, count + 1
}

// packHeaders packs the request's headers as name NUL value NUL (plus Host when set).
func packHeaders(req *http.Request) ([]byte, int, *Error) {
	size, count := 0, 0
	for k, vs := range req.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 2
			count++
		}
	}
	if req.Host != "" && req.Host != req.URL.Host {
		size += len(req.Host) + 6
		count++
	}
	if count == 0 {
		return nil, 0, nil
	}
	b := make([]byte, 0, size)
	for k, vs := range req.Header {
		if strings.IndexByte(k, 0) >= 0 {
			return nil, 0, &Error{Code: "invalid_header", Message: "invalid header name " + k}
		}
		for _, v := range vs {
			if strings.IndexByte(v, 0) >= 0 {
				return nil, 0, &Error{Code: "invalid_header", Message: "invalid value for header " + k}
			}
			b = append(b, k...)
			b = append(b, 0)
			b = append(b, v...)
			b = append(b, 0)
		}
	}
	if req.Host != "" && req.Host != req.URL.Host {
		b = append(b, "host"...)
		b = append(b, 0)
		b = append(b, req.Host...)
		b = append(b, 0)
	}
	return b, count, nil
}

// requestBody reads a small body of known length into memory (replayable); anything else
// streams.
func requestBody(req *http.Request) ([]byte, int, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, capi.BodyNone, nil
	}
	if req.ContentLength > 0 && req.ContentLength <= bufferedBodyMax {
		b := make([]byte, req.ContentLength)
		n, err := io.ReadFull(req.Body, b)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, err
		}
		return b[:n], capi.BodyBytes, nil
	}
	if req.ContentLength == 0 && req.GetBody == nil {
		// Unknown length: stream.
		return nil, capi.BodyStream, nil
	}
	if req.ContentLength == 0 {
		return nil, capi.BodyNone, nil
	}
	return nil, capi.BodyStream, nil
}

// pump streams a request body into the engine, one queued write at a time, so no OS thread
// blocks on back-pressure.
func (t *transport) pump(rb *reqBody, w *capi.Writer, id uintptr, ch chan capi.Completion) {
	defer rb.close()
	defer t.unregister(id)
	buf := make([]byte, 32<<10)
	for {
		n, err := rb.body.Read(buf)
		if n > 0 {
			rc, e := t.writeQueue(w, buf[:n], id)
			if rc != capi.OK {
				capi.FreeErr(e)
				capi.CloseWriter(w, true)
				return
			}
			c := <-ch
			if c.Code != capi.OK {
				capi.FreeErr(c.Err)
				capi.CloseWriter(w, true)
				return
			}
		}
		if errors.Is(err, io.EOF) {
			capi.CloseWriter(w, false)
			return
		}
		if err != nil {
			capi.CloseWriter(w, true)
			return
		}
	}
}

func (t *transport) response(req *http.Request, r *capi.Response, id uintptr, ch chan capi.Completion) *http.Response {
	hint := int(t.takeHint.Load())
	var state *tls.ConnectionState
	hook := responseInfoHook(req.Context())
	var timings capi.Timings
	var cache int
	t.gate.enter()
	if req.URL.Scheme == "https" {
		// Before Take, which frees a response whose body came whole.
		if info, ok := capi.TLS(r); ok {
			state = t.tls.state(&info)
		}
	}
	if hook != nil {
		timings = capi.ResponseTimings(r)
		cache = capi.CacheStatus(r)
	}
	h := capi.Take(r, hint)
	t.gate.leave()
	if hook != nil {
		hook(responseInfo(h.Reused, timings, cache))
	}
	t.sized(len(h.Headers)+len(h.Body), hint)
	header := make(http.Header, h.Count)
	// One backing array for every header's first value (as net/http's reader does), and one
	// string for every header field. With a small body, names and values are substrings of the
	// buffer Take filled, which nothing writes to again (the body after the head is only read
	// out of it); a larger body is not kept alive by the header map: the head is copied.
	values := make([]string, h.Count)
	contentLength := int64(-1)
	var rest string
	switch {
	case len(h.Headers) == 0:
	case len(h.Body) <= sharedHeadMax:
		rest = unsafe.String(&h.Headers[0], len(h.Headers))
	default:
		rest = string(h.Headers)
	}
	for k := range h.Count {
		i := strings.IndexByte(rest, 0)
		if i < 0 {
			break
		}
		name := rest[:i]
		rest = rest[i+1:]
		j := strings.IndexByte(rest, 0)
		if j < 0 {
			j = len(rest)
		}
		value := rest[:j]
		rest = rest[min(j+1, len(rest)):]
		key := canonicalKey(name)
		if vs, ok := header[key]; ok {
			header[key] = append(vs, value)
		} else {
			values[k] = value
			header[key] = values[k : k+1 : k+1]
		}
		if key == "Content-Length" {
			if n, ok := parseLength(value); ok {
				contentLength = n
			}
		}
	}
	proto, major, minor := "HTTP/1.1", 1, 1
	switch h.Version {
	case 20:
		proto, major, minor = "HTTP/2.0", 2, 0
	case 10:
		proto, major, minor = "HTTP/1.0", 1, 0
	}
	// One allocation for the response and a body that arrived whole.
	sr := &smallResponse{}
	resp := &sr.resp
	*resp = http.Response{
		Status:        statusLine(h.Status),
		StatusCode:    h.Status,
		Proto:         proto,
		ProtoMajor:    major,
		ProtoMinor:    minor,
		Header:        header,
		ContentLength: contentLength,
		Request:       req,
		TLS:           state,
	}
	switch {
	case h.Complete:
		// The whole body came with the head: nothing native is left to read or free.
		t.unregister(id)
		recycle(ch)
		if req.Method == http.MethodHead || len(h.Body) == 0 {
			resp.Body = http.NoBody
		} else {
			sr.body.b = h.Body
			resp.Body = &sr.body
		}
	default:
		b := &body{t: t, resp: r, id: id, ch: ch, ctx: req.Context()}
		b.cleanup = runtime.AddCleanup(b, func(c bodyCleanup) { capi.FreeResponse(c.r); c.t.unregister(c.id) },
			bodyCleanup{t: t, r: r, id: id})
		resp.Body = b
		if req.Method == http.MethodHead {
			resp.Body = http.NoBody
			b.Close()
		}
	}
	return resp
}

// sized adjusts the guess for Take's buffer after a response of n bytes (head and whole body)
// was taken with a buffer of hint: it grows at once past a response that did not fit (which
// took a second call), and every takeWindow responses it becomes the largest of the window plus
// takeSlack, so it shrinks too. A fixed quarter more than the last response (as before) kept a
// 1 KiB body's buffer in Go's 2 KiB size class: over half of the bytes a request allocated on
// the Go side (bench/results/2026-12-06-go-3.md).
func (t *transport) sized(n, hint int) {
	want := int64(min(max(n+takeSlack, 256), takeHintMax))
	if n > hint {
		t.takeHint.Store(want)
	}
	for {
		seen := t.takeSeen.Load()
		if want <= seen || t.takeSeen.CompareAndSwap(seen, want) {
			break
		}
	}
	if t.takeCount.Add(1)%takeWindow == 0 {
		t.takeHint.Store(max(t.takeSeen.Swap(0), want))
	}
}

// commonKeys maps the lower-case names the engine reports (HTTP/2 requires them; HTTP/1 names
// are lower-cased too) of common response headers to their canonical form without a
// conversion per response.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Alt-Svc",
		"Cache-Control", "Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type",
		"Date", "Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Pragma",
		"Retry-After", "Server", "Set-Cookie", "Strict-Transport-Security", "Trailer",
		"Transfer-Encoding", "Vary", "Via", "Www-Authenticate", "X-Content-Type-Options",
		"X-Frame-Options", "X-Request-Id"} {
		m[strings.ToLower(k)] = k
	}
	return m
}()

func canonicalKey(name string) string {
	if k, ok := commonKeys[name]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// smallResponse holds a response and its whole body in one allocation.
type smallResponse struct {
	resp http.Response
	body bytesBody
}

// statusLines are the http.Response.Status strings of the registered codes.
var statusLines = func() (s [600]string) {
	for code := 100; code < len(s); code++ {
		if text := http.StatusText(code); text != "" {
			s[code] = itoa(code) + " " + text
		}
	}
	return s
}()

func statusLine(code int) string {
	if code >= 100 && code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return itoa(code) + " " + http.StatusText(code)
}

// bytesBody is a response body that arrived whole with the head. Close may race Read (as with
// net/http's bodies).
type bytesBody struct {
	mu     sync.Mutex
	b      []byte
	closed bool
}

func (b *bytesBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if len(b.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.b)
	b.b = b.b[n:]
	return n, nil
}

// WriteTo lets io.Copy write the body without an intermediate buffer.
func (b *bytesBody) WriteTo(w io.Writer) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	n, err := w.Write(b.b)
	b.b = b.b[n:]
	return int64(n), err
}

func (b *bytesBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.b = nil
	return nil
}

func parseLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

type bodyCleanup struct {
	t  *transport
	r  *capi.Response
	id uintptr
}

// body streams a response body: bytes already received are copied without waiting; for more,
// a queued read wakes this goroutine through the poller.
//
// A queued read's completion has exactly one receiver, the Read that queued it; Close only
// frees the response (which cancels that read) and leaves the id to that Read to release.
type body struct {
	t       *transport
	id      uintptr
	ch      chan capi.Completion
	ctx     context.Context
	cleanup runtime.Cleanup

	mu      sync.Mutex
	resp    *capi.Response // nil once closed
	reading bool           // a queued read is in flight; its Read releases the id
	err     error          // sticky
}

var errBodyClosed = errors.New("wirecore: read on closed response body")

func (b *body) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		b.mu.Lock()
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return 0, err
		}
		if b.resp == nil {
			b.mu.Unlock()
			return 0, errBodyClosed
		}
		b.t.gate.enter()
		n, eof, rc, e := capi.ReadNowait(b.resp, p)
		b.t.gate.leave()
		if n > 0 {
			b.mu.Unlock()
			return n, nil
		}
		if rc != capi.OK {
			b.err = errorOf(rc, e)
			b.mu.Unlock()
			return 0, b.err
		}
		if eof {
			b.err = io.EOF
			b.mu.Unlock()
			return 0, io.EOF
		}
		rc, e = b.t.readQueue(b.resp, b.id)
		if rc != capi.OK {
			b.err = errorOf(rc, e)
			b.mu.Unlock()
			return 0, b.err
		}
		b.reading = true
		b.mu.Unlock()

		var c capi.Completion
		select {
		case c = <-b.ch:
		case <-b.ctx.Done():
			b.mu.Lock()
			if b.err == nil {
				b.err = fromContext(b.ctx)
			}
			b.mu.Unlock()
			b.free() // cancels the queued read, whose completion still comes here
			c = <-b.ch
		}
		b.mu.Lock()
		b.reading = false
		closed := b.resp == nil
		err := b.err
		b.mu.Unlock()
		if closed {
			capi.FreeErr(c.Err)
			b.t.unregister(b.id)
			if err == nil || err == io.EOF {
				err = errBodyClosed
			}
			return 0, err
		}
		if c.Code != capi.OK {
			err := errorOf(c.Code, c.Err)
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			return 0, err
		}
	}
}

// Close frees the native response; an unread body closes its HTTP/1 connection.
func (b *body) Close() error {
	b.free()
	return nil
}

// free frees the native response once; the id is released here unless a queued read is in
// flight (its Read releases it when the cancelled read completes).
func (b *body) free() {
	b.mu.Lock()
	r := b.resp
	b.resp = nil
	reading := b.reading
	b.mu.Unlock()
	if r == nil {
		return
	}
	b.cleanup.Stop()
	b.t.gate.enter()
	capi.FreeResponse(r)
	b.t.gate.leave()
	if !reading {
		b.t.unregister(b.id)
	}
}

func (t *transport) readQueue(r *capi.Response, id uintptr) (int, *capi.Err) {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.freed {
		return capi.CodeFromString("closed"), nil
	}
	return capi.ReadQueue(r, t.queue, id)
}

func (t *transport) writeQueue(w *capi.Writer, p []byte, id uintptr) (int, *capi.Err) {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.freed {
		return capi.CodeFromString("closed"), nil
	}
	return capi.WriteQueue(w, p, t.queue, id)
}

func (t *transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Close is Shutdown with a 5 s deadline.
func (t *Transport) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return t.Shutdown(ctx)
}

// Shutdown refuses new requests, waits until requests and body reads in flight finish or ctx
// ends, then frees the native client; a body still unread fails with ErrClosed. Every
// goroutine the Transport started has ended when it returns. Idempotent.
func (t *Transport) Shutdown(ctx context.Context) error {
	t.cleanup.Stop()
	d := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		d = max(time.Until(dl), 0)
	} else {
		d = 24 * time.Hour
	}
	t.close(d)
	return nil
}

// CloseIdleConnections closes the engine's idle pooled connections now (HTTP/1 keep-alive
// connections and HTTP/2 sessions with no stream open); requests in flight are untouched and
// the Transport stays usable. http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	t.life.RLock()
	defer t.life.RUnlock()
	if !t.freed {
		capi.CloseIdle(t.client)
	}
}

func (t *transport) close(deadline time.Duration) {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		capi.CloseClient(t.client, uint64(deadline/time.Millisecond))
		until := time.Now().Add(deadline)
		for t.inflight.Load() > 0 && time.Now().Before(until) {
			time.Sleep(2 * time.Millisecond)
		}
		// Whatever still waits (a body nobody reads) gets "closed" instead of a hang.
		t.mu.Lock()
		for id, ch := range t.pending {
			select {
			case ch <- capi.Completion{ID: id, Code: capi.CodeFromString("closed")}:
			default:
			}
			delete(t.pending, id)
			t.inflight.Add(-1)
		}
		t.mu.Unlock()
		capi.CloseQueue(t.queue)
		<-t.pollerEnd
		t.letters.Wait()
		t.life.Lock()
		t.freed = true
		capi.FreeQueue(t.queue)
		t.dbuf.Free()
		capi.FreeClient(t.client)
		t.life.Unlock()
	})
}

// FlushTelemetry exports the finished OpenTelemetry spans and the http.client.request.duration
// metric to Config.Otel.Endpoint now, and returns once the collector answered or the export
// failed (Stats().Otel.Dropped counts the spans lost), or with ctx's error when ctx ends
// first (the export goes on in the background). Close does this too.
func (t *Transport) FlushTelemetry(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := 24 * time.Hour
	if dl, ok := ctx.Deadline(); ok {
		deadline = max(time.Until(dl), 0)
	}
	done := make(chan bool, 1)
	t.life.RLock()
	if t.freed {
		t.life.RUnlock()
		return errClosed
	}
	go func() {
		defer t.life.RUnlock()
		done <- capi.FlushTelemetry(t.client, uint64(deadline/time.Millisecond))
	}()
	select {
	case ok := <-done:
		if !ok {
			return context.DeadlineExceeded
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() (Stats, error) {
	var s Stats
	t.life.RLock()
	if t.freed {
		t.life.RUnlock()
		return s, errClosed
	}
	js := capi.StatsJSON(t.client)
	t.life.RUnlock()
	err := json.Unmarshal([]byte(js), &s)
	return s, err
}

// Prometheus returns the counters in Prometheus text format.
func (t *Transport) Prometheus() string {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.freed {
		return ""
	}
	return capi.Prometheus(t.client)
}

// Version is the engine's version.
func Version() string { return capi.Version() }

// ErrorCodes lists every error code the engine can return.
func ErrorCodes() []string { return strings.Split(capi.ErrorCodes(), "\n") }
