// Package capi is the only package that imports "C": thin Go signatures over include/wirecore.h.
//
// Linking: the library is linked statically, with -ldl -lm -lpthread; which one, the cgo flags
// of link_prebuilt.go (a released module's prebuilt/<goos>_<goarch>/libwirecore.a) or, with
// -tags wirecore_local, link_local.go (lib/libwirecore.a, the library cargo built in this
// repository: `make build-go`) say.
//
// Ownership: Go memory passed to C (URLs, headers, bodies) is only read during the call and
// copied by wirecore. Pointers returned by C are owned as the header documents; each has one
// free function here.
package capi

/*
#include <stdlib.h>
#include <string.h>
#include "wirecore.h"

// Per-request options (wirecore_request_set_*); -1 leaves idempotent, urgency and
// max_redirects unset.
typedef struct wc_opts {
	int idempotent;
	uint64_t connect_ms, read_ms, pool_ms;
	int urgency;
	bool incremental;
	int64_t max_redirects;
} wc_opts;

static wirecore_code wc_apply(wirecore_request *req, const wc_opts *o, const char *key,
		size_t key_len, const char *redirect, size_t redirect_len, const char *cache, size_t cache_len,
		const char *bkey, size_t bkey_len, const char *tp, size_t tp_len, const char *ts, size_t ts_len,
		wirecore_error **err) {
	wirecore_code rc = WIRECORE_OK;
	if (o->idempotent >= 0) rc = wirecore_request_set_idempotent(req, o->idempotent == 1);
	if (rc == WIRECORE_OK && key_len > 0) rc = wirecore_request_set_rate_limit_key(req, key, key_len, err);
	if (rc == WIRECORE_OK) rc = wirecore_request_set_connect_timeout_ms(req, o->connect_ms, err);
	if (rc == WIRECORE_OK) rc = wirecore_request_set_read_timeout_ms(req, o->read_ms, err);
	if (rc == WIRECORE_OK) rc = wirecore_request_set_pool_timeout_ms(req, o->pool_ms, err);
	if (rc == WIRECORE_OK && o->urgency >= 0)
		rc = wirecore_request_set_priority(req, (uint8_t)o->urgency, o->incremental, err);
	if (rc == WIRECORE_OK && (redirect_len > 0 || o->max_redirects >= 0))
		rc = wirecore_request_set_redirect(req, redirect_len > 0 ? redirect : NULL, redirect_len,
			o->max_redirects, err);
	if (rc == WIRECORE_OK && cache_len > 0) rc = wirecore_request_set_cache_mode(req, cache, cache_len, err);
	if (rc == WIRECORE_OK && bkey_len > 0) rc = wirecore_request_set_balance_key(req, bkey, bkey_len, err);
	if (rc == WIRECORE_OK && (tp_len > 0 || ts_len > 0))
		rc = wirecore_request_set_trace_context(req, tp, tp_len, ts_len > 0 ? ts : NULL, ts_len, err);
	return rc;
}

// Builds and submits a request in one crossing. `hdrs` packs `nh` headers as name NUL value NUL.
// `o` is NULL without per-request options; `key` is the rate-limit key, `cache` the cache mode,
// `bkey` the balance key, `tp` and `ts` the trace context.
static wirecore_code wc_submit(const wirecore_client *c, const wirecore_queue *q, uintptr_t ud,
		const char *method, size_t method_len, const char *url, size_t url_len,
		const char *hdrs, size_t hdrs_len, size_t nh,
		const uint8_t *body, size_t body_len, int body_mode, uint64_t timeout_ms, bool no_defaults,
		const wc_opts *o, const char *key, size_t key_len, const char *redirect, size_t redirect_len,
		const char *cache, size_t cache_len, const char *bkey, size_t bkey_len,
		const char *tp, size_t tp_len, const char *ts, size_t ts_len,
		wirecore_task **task, wirecore_body_writer **writer, wirecore_error **err) {
	wirecore_request *req = NULL;
	wirecore_code rc = wirecore_request_new(method, method_len, url, url_len, &req, err);
	if (rc != WIRECORE_OK) return rc;
	const char *p = hdrs, *end = hdrs + hdrs_len;
	for (size_t i = 0; i < nh && p < end; i++) {
		size_t nl = strnlen(p, (size_t)(end - p));
		const char *v = p + nl + 1;
		if (v > end) break;
		size_t vl = strnlen(v, (size_t)(end - v));
		rc = wirecore_request_add_header(req, p, nl, v, vl, err);
		if (rc != WIRECORE_OK) {
			wirecore_request_free(req);
			return rc;
		}
		p = v + vl + 1;
	}
	if (o) rc = wc_apply(req, o, key, key_len, redirect, redirect_len, cache, cache_len, bkey, bkey_len, tp, tp_len, ts,
		ts_len, err);
	if (rc != WIRECORE_OK) {
		wirecore_request_free(req);
		return rc;
	}
	if (body_mode == 1) {
		rc = wirecore_request_set_body(req, body, body_len, err);
	} else if (body_mode == 2) {
		rc = wirecore_request_body_stream(req, writer);
	}
	if (rc != WIRECORE_OK) {
		wirecore_request_free(req);
		return rc;
	}
	if (timeout_ms > 0) rc = wirecore_request_set_timeout_ms(req, timeout_ms, err);
	if (rc != WIRECORE_OK) {
		wirecore_request_free(req);
		return rc;
	}
	if (no_defaults) wirecore_request_set_default_headers(req, false);
	return wirecore_client_submit_queue(c, req, q, (void *)ud, task, err);
}

static wirecore_code wc_sse_next_queue(wirecore_sse *s, const wirecore_queue *q, uintptr_t ud,
		wirecore_error **err) {
	return wirecore_sse_next_queue(s, q, (void *)ud, err);
}

static wirecore_code wc_read_queue(wirecore_response *r, const wirecore_queue *q, uintptr_t ud,
		wirecore_error **err) {
	return wirecore_response_read_queue(r, q, (void *)ud, err);
}

static wirecore_code wc_write_queue(wirecore_body_writer *w, const uint8_t *data, size_t len,
		const wirecore_queue *q, uintptr_t ud, wirecore_error **err) {
	return wirecore_body_writer_write_queue(w, data, len, q, (void *)ud, err);
}

// What wc_take found: the head, and whether the whole body came along (then the response was
// freed).
typedef struct {
	int32_t status;
	int32_t version;
	int32_t reused;
	int32_t complete;
	size_t header_count;
	size_t headers_len;
	size_t body_len;
} wc_taken;

// Takes a response's head and, when the body has fully arrived, the body too, in one crossing:
// buf receives the headers (name NUL value NUL) and then the body; a response whose whole body
// was copied is freed (t->complete). Returns 0, or the buffer size needed when cap is too small
// (nothing copied or freed). A body still arriving (or failed) stays in the response.
static size_t wc_take(wirecore_response *r, uint8_t *buf, size_t cap, wc_taken *t) {
	wirecore_response_head h;
	memset(t, 0, sizeof *t);
	if (wirecore_response_get_head(r, &h) != WIRECORE_OK) return 0;
	size_t blen = 0;
	bool eof = false;
	wirecore_response_buffered(r, &blen, &eof);
	int whole = eof;
	size_t need = h.headers_len + (whole ? blen : 0);
	if (need > cap) return need;
	t->status = h.status;
	t->version = h.version;
	t->reused = h.reused;
	t->header_count = h.header_count;
	t->headers_len = h.headers_len;
	if (h.headers_len > 0) memcpy(buf, h.headers, h.headers_len);
	if (whole) {
		size_t n = 0;
		bool end = false;
		if (blen > 0 && wirecore_response_read_nowait(r, buf + h.headers_len, blen, &n, &end, NULL) != WIRECORE_OK) {
			return 0; // unreachable: the body completed without error
		}
		t->body_len = n;
		t->complete = 1;
		wirecore_response_free(r);
	}
	return 0;
}

// A response's TLS handshake and up to 8 peer certificates, in one crossing.
#define WC_TLS_CERTS 8
typedef struct {
	wirecore_tls_info info;
	size_t n;
	const uint8_t *der[WC_TLS_CERTS];
	size_t len[WC_TLS_CERTS];
	size_t name_len;
} wc_tls;

static bool wc_tls_get(const wirecore_response *r, wc_tls *t) {
	if (!wirecore_response_tls(r, &t->info)) return false;
	t->n = t->info.peer_cert_count < WC_TLS_CERTS ? t->info.peer_cert_count : WC_TLS_CERTS;
	for (size_t i = 0; i < t->n; i++) {
		if (wirecore_response_tls_peer_cert(r, i, &t->der[i], &t->len[i]) != WIRECORE_OK) {
			t->n = i;
			break;
		}
	}
	t->name_len = strlen(t->info.server_name);
	return true;
}

// Dead letters copied out of wirecore_client_poll_dead_letters' callback (its pointers die
// with the call), for Go to read and then free with wc_free_letters.
typedef struct wc_letter {
	char *method, *url, *headers_json, *error_code, *message;
	uint8_t *body;
	size_t body_len;
	uint16_t status;
	uint32_t attempts;
	uint64_t time_ms;
} wc_letter;

typedef struct wc_letters {
	wc_letter items[64];
	size_t n;
} wc_letters;

static void wc_keep_letter(void *ud, const wirecore_dead_letter *l) {
	wc_letters *ls = ud;
	if (ls->n >= 64) return;
	wc_letter *o = &ls->items[ls->n++];
	o->method = strdup(l->method);
	o->url = strdup(l->url);
	o->headers_json = strdup(l->headers_json);
	o->error_code = strdup(l->error_code);
	o->message = strdup(l->message);
	o->body = NULL;
	o->body_len = l->body_len;
	if (l->body_len > 0) {
		o->body = malloc(l->body_len);
		if (o->body) memcpy(o->body, l->body, l->body_len);
	}
	o->status = l->status;
	o->attempts = l->attempts;
	o->time_ms = l->time_ms;
}

static wirecore_code wc_poll_letters(const wirecore_client *c, uint64_t ms, wc_letters *ls) {
	ls->n = 0;
	return wirecore_client_poll_dead_letters(c, ms, wc_keep_letter, ls, NULL);
}

// Log records copied out of wirecore_log_poll's callback, freed with wc_free_logs.
typedef struct wc_log {
	char *level, *target, *message, *fields_json;
	uint64_t time_ms;
} wc_log;

typedef struct wc_logs {
	wc_log items[256];
	size_t n;
} wc_logs;

static void wc_keep_log(void *ud, const wirecore_log_record *r) {
	wc_logs *ls = ud;
	if (ls->n >= 256) return;
	wc_log *o = &ls->items[ls->n++];
	o->level = strdup(r->level);
	o->target = strdup(r->target);
	o->message = strdup(r->message);
	o->fields_json = strdup(r->fields_json);
	o->time_ms = r->time_ms;
}

static wirecore_code wc_poll_logs(uint64_t ms, wc_logs *ls) {
	ls->n = 0;
	return wirecore_log_poll(ms, wc_keep_log, ls, NULL);
}

static void wc_free_logs(wc_logs *ls) {
	for (size_t i = 0; i < ls->n; i++) {
		wc_log *o = &ls->items[i];
		free(o->level); free(o->target); free(o->message); free(o->fields_json);
	}
	ls->n = 0;
}

// Finished spans copied out of wirecore_client_poll_spans' callback as their JSON record,
// freed with wc_free_spans.
typedef struct wc_spans {
	char *items[64];
	size_t n;
} wc_spans;

static void wc_keep_span(void *ud, const wirecore_span *sp) {
	wc_spans *ss = ud;
	if (ss->n >= 64) return;
	ss->items[ss->n++] = strdup(sp->json);
}

static wirecore_code wc_poll_spans(const wirecore_client *c, uint64_t ms, wc_spans *ss) {
	ss->n = 0;
	return wirecore_client_poll_spans(c, ms, wc_keep_span, ss, NULL);
}

static void wc_free_spans(wc_spans *ss) {
	for (size_t i = 0; i < ss->n; i++) free(ss->items[i]);
	ss->n = 0;
}

static void wc_free_letters(wc_letters *ls) {
	for (size_t i = 0; i < ls->n; i++) {
		wc_letter *o = &ls->items[i];
		free(o->method); free(o->url); free(o->headers_json); free(o->error_code);
		free(o->message); free(o->body);
	}
	ls->n = 0;
}
*/
import "C"

import (
	"encoding/json"
	"strings"
	"sync"
	"unsafe"
)

// Handles are C pointers; Go never dereferences them.
type (
	Client   = C.wirecore_client
	Queue    = C.wirecore_queue
	Task     = C.wirecore_task
	Response = C.wirecore_response
	Writer   = C.wirecore_body_writer
	Err      = C.wirecore_error
)

// OK is WIRECORE_OK.
const OK = 0

// Completion is one finished operation taken from a queue.
type Completion struct {
	ID       uintptr
	Code     int
	Response *Response
	Err      *Err
}

// Head is a response's status line, headers and URL.
type Head struct {
	Status  int
	Version int
	Reused  bool
	Headers []byte // name NUL value NUL ...
	Count   int
	URL     string
}

// ErrorInfo reads an error's code string and message, then frees it.
func ErrorInfo(e *Err) (code string, message string) {
	if e == nil {
		return "internal", "unknown error"
	}
	code = C.GoString(C.wirecore_error_code(e))
	message = C.GoString(C.wirecore_error_message(e))
	C.wirecore_error_free(e)
	return code, message
}

// CodeString is the stable code string of a status value.
func CodeString(code int) string { return C.GoString(C.wirecore_code_str(C.int32_t(code))) }

// CodeFromString is the status value of a code string.
func CodeFromString(s string) int {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return int(C.wirecore_code_from_str(cs))
}

// ErrorCodes lists every core error code.
func ErrorCodes() string { return C.GoString(C.wirecore_error_codes()) }

// Version is the library version.
func Version() string { return C.GoString(C.wirecore_version()) }

// ABIVersion returns the header's and the linked library's ABI versions.
func ABIVersion() (header, library int) {
	return int(C.WIRECORE_ABI_VERSION), int(C.wirecore_abi_version())
}

// NewClient builds a client from the core's JSON config.
func NewClient(config string) (*Client, int, *Err) {
	cs := C.CString(config)
	defer C.free(unsafe.Pointer(cs))
	var c *Client
	var e *Err
	rc := C.wirecore_client_new(cs, &c, &e)
	return c, int(rc), e
}

// FreeClient frees a client handle.
func FreeClient(c *Client) { C.wirecore_client_free(c) }

// CloseClient drains in-flight requests up to deadlineMs, then closes idle connections.
// It blocks the calling thread (once, at shutdown).
func CloseClient(c *Client, deadlineMs uint64) { C.wirecore_client_close(c, C.uint64_t(deadlineMs)) }

// FlushTelemetry exports the finished spans and the duration metric now, blocking until the
// collector answered, the export failed or deadlineMs passed (false then).
func FlushTelemetry(c *Client, deadlineMs uint64) bool {
	return C.wirecore_client_flush_telemetry(c, C.uint64_t(deadlineMs)) == OK
}

func takeString(p *C.char, n C.size_t) string {
	s := C.GoStringN(p, C.int(n))
	C.wirecore_string_free(p)
	return s
}

// StatsJSON is the client's stats snapshot as JSON.
func StatsJSON(c *Client) string {
	var p *C.char
	var n C.size_t
	if C.wirecore_client_stats_json(c, &p, &n) != OK {
		return "{}"
	}
	return takeString(p, n)
}

// DiagnosticsJSON returns the client's health report as JSON.
func DiagnosticsJSON(c *Client) string {
	var p *C.char
	var n C.size_t
	if C.wirecore_client_diagnostics_json(c, &p, &n) != OK {
		return ""
	}
	return takeString(p, n)
}

// CookiesJSON is the client's cookie jar as a JSON array.
func CookiesJSON(c *Client) string {
	var p *C.char
	var n C.size_t
	if C.wirecore_client_cookies_json(c, &p, &n) != OK {
		return "[]"
	}
	return takeString(p, n)
}

// ClearCookies empties the client's cookie jar.
func ClearCookies(c *Client) { C.wirecore_client_clear_cookies(c) }

// Prometheus is the client's stats in Prometheus text format.
func Prometheus(c *Client) string {
	var p *C.char
	var n C.size_t
	if C.wirecore_client_prometheus(c, &p, &n) != OK {
		return ""
	}
	return takeString(p, n)
}

// NewQueue creates a completion queue.
func NewQueue() *Queue { return C.wirecore_queue_new() }

// CloseQueue wakes waiters; Wait returns -1 once the queue is empty.
func CloseQueue(q *Queue) { C.wirecore_queue_close(q) }

// FreeQueue frees a queue and any completion left in it.
func FreeQueue(q *Queue) { C.wirecore_queue_free(q) }

// CompletionBuffer is a reusable batch for Wait.
type CompletionBuffer struct {
	c []C.wirecore_completion
}

// NewCompletionBuffer allocates room for n completions in C memory.
func NewCompletionBuffer(n int) *CompletionBuffer {
	p := (*C.wirecore_completion)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.wirecore_completion{}))))
	return &CompletionBuffer{c: unsafe.Slice(p, n)}
}

// Free releases the buffer.
func (b *CompletionBuffer) Free() { C.free(unsafe.Pointer(&b.c[0])) }

// copyOut converts the first n completions the engine wrote into out.
func (b *CompletionBuffer) copyOut(out []Completion, n int) {
	for i := 0; i < n; i++ {
		c := &b.c[i]
		out[i] = Completion{
			// The id as submitted (a number, never a pointer): converted here, not by a cgo
			// call per completion.
			ID:       uintptr(c.userdata),
			Code:     int(c.code),
			Response: c.response,
			Err:      c.error,
		}
	}
}

// Wait blocks (this OS thread) until at least one completion arrives, then moves up to the
// buffer's size into out. It returns -1 once the queue is closed and empty.
func Wait(q *Queue, b *CompletionBuffer, out []Completion, timeoutMs int64) int {
	n := int(C.wirecore_queue_wait(q, &b.c[0], C.size_t(len(b.c)), C.int64_t(timeoutMs)))
	b.copyOut(out, n)
	return n
}

// Kick wakes a thread blocked in Wait on q (it returns 0 when nothing is queued), or makes the
// next Wait return at once.
func Kick(q *Queue) { C.wirecore_queue_kick(q) }

// NotifyFD is the queue's wake-up pipe (owned by the queue; dup it to keep it).
func NotifyFD(q *Queue) int { return int(C.wirecore_queue_notify_fd(q)) }

// TryTake moves completions into out without waiting; 0 means empty (and arms NotifyFD),
// -1 closed and empty.
func TryTake(q *Queue, b *CompletionBuffer, out []Completion) int {
	n := int(C.wirecore_queue_try_take(q, &b.c[0], C.size_t(len(b.c))))
	b.copyOut(out, n)
	return n
}

// Body modes for Submit.
const (
	BodyNone   = 0
	BodyBytes  = 1
	BodyStream = 2
)

func strPtr(s string) *C.char {
	if len(s) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// ParsePriority parses a priority with the core's one parser (the forms every language takes).
func ParsePriority(s string) (urgency uint8, incremental bool, rc int, e *Err) {
	var u C.uint8_t
	var i C.bool
	r := C.wirecore_priority_parse(strPtr(s), C.size_t(len(s)), &u, &i, &e)
	return uint8(u), bool(i), int(r), e
}

// Options are per-request options; Idempotent, Urgency and MaxRedirects -1 leave them unset,
// 0 ms keeps the config's timeout, an empty RateLimitKey counts the request under its origin,
// an empty Redirect keeps the default policy (follow), an empty Cache the default cache mode, an
// empty BalanceKey leaves a consistent_hash service to its header or cookie key, empty
// Traceparent and Tracestate send no trace context of their own.
type Options struct {
	Idempotent                int
	RateLimitKey              string
	BalanceKey                string
	Traceparent, Tracestate   string
	Cache                     string
	ConnectMs, ReadMs, PoolMs uint64
	Urgency                   int
	Incremental               bool
	Redirect                  string
	MaxRedirects              int64
}

// out holds a request-path cgo call's out-parameters. A Go variable whose address a cgo call
// takes lives on the heap, so each would be an allocation per request; these are pooled.
type out struct {
	task  *Task
	w     *Writer
	e     *Err
	taken C.wc_taken
	tls   C.wc_tls
}

var outs = sync.Pool{New: func() any { return new(out) }}

func getOut() *out { return outs.Get().(*out) }

func putOut(o *out) {
	*o = out{}
	outs.Put(o)
}

// Submit builds a request and submits it to q with id as userdata, in one cgo call. Only a
// cancellable request gets a task handle; noDefaults keeps the client's default headers off.
// headers packs count fields as name NUL value NUL. With BodyStream, the returned writer
// streams the body. opts is nil without per-request options.
func Submit(c *Client, q *Queue, id uintptr, method, url string, headers []byte, count int,
	body []byte, bodyMode int, timeoutMs uint64, cancellable, noDefaults bool, opts *Options) (*Task, *Writer, int, *Err) {
	o := getOut()
	defer putOut(o)
	taskOut := &o.task
	if !cancellable {
		taskOut = nil
	}
	hp := (*C.char)(nil)
	if len(headers) > 0 {
		hp = (*C.char)(unsafe.Pointer(&headers[0]))
	}
	var co *C.wc_opts
	var key, redirect, cache, bkey, tp, ts string
	if opts != nil {
		co = &C.wc_opts{idempotent: C.int(opts.Idempotent), connect_ms: C.uint64_t(opts.ConnectMs),
			read_ms: C.uint64_t(opts.ReadMs), pool_ms: C.uint64_t(opts.PoolMs),
			urgency: C.int(opts.Urgency), incremental: C.bool(opts.Incremental),
			max_redirects: C.int64_t(opts.MaxRedirects)}
		key = opts.RateLimitKey
		redirect = opts.Redirect
		cache = opts.Cache
		bkey = opts.BalanceKey
		tp, ts = opts.Traceparent, opts.Tracestate
	}
	rc := C.wc_submit(c, q, C.uintptr_t(id), strPtr(method), C.size_t(len(method)),
		strPtr(url), C.size_t(len(url)), hp, C.size_t(len(headers)), C.size_t(count),
		bytesPtr(body), C.size_t(len(body)), C.int(bodyMode), C.uint64_t(timeoutMs),
		C.bool(noDefaults), co, strPtr(key), C.size_t(len(key)), strPtr(redirect),
		C.size_t(len(redirect)), strPtr(cache), C.size_t(len(cache)),
		strPtr(bkey), C.size_t(len(bkey)), strPtr(tp), C.size_t(len(tp)), strPtr(ts),
		C.size_t(len(ts)), taskOut, &o.w, &o.e)
	return o.task, o.w, int(rc), o.e
}

// Cancel aborts an in-flight request (its completion then carries WIRECORE_CANCELLED).
func Cancel(t *Task) { C.wirecore_task_cancel(t) }

// FreeTask frees a task handle (does not cancel).
func FreeTask(t *Task) { C.wirecore_task_free(t) }

// GetHead reads the response head in one call. Headers are copied into Go memory.
func GetHead(r *Response) Head {
	var h C.wirecore_response_head
	C.wirecore_response_get_head(r, &h)
	return Head{
		Status:  int(h.status),
		Version: int(h.version),
		Reused:  bool(h.reused),
		Headers: C.GoBytes(unsafe.Pointer(h.headers), C.int(h.headers_len)),
		Count:   int(h.header_count),
		URL:     C.GoString(h.url),
	}
}

// Taken is a response head, and its body when it had fully arrived.
type Taken struct {
	Status   int
	Version  int
	Reused   bool
	Count    int
	Headers  []byte // name NUL value NUL ...
	Body     []byte // valid when Complete
	Complete bool   // the whole body is in Body and the native response was freed
}

// Take reads a response's head and, when the whole body has arrived, the body too, in one cgo
// call (two when the first buffer guess is too small); a complete response is freed. Headers
// and Body share one Go buffer.
func Take(r *Response, sizeHint int) Taken {
	o := getOut()
	defer putOut(o)
	t := &o.taken
	buf := make([]byte, max(sizeHint, 64))
	need := C.wc_take(r, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), t)
	if need > 0 {
		buf = make([]byte, int(need))
		C.wc_take(r, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), t)
	}
	hl := int(t.headers_len)
	return Taken{
		Status:   int(t.status),
		Version:  int(t.version),
		Reused:   t.reused != 0,
		Count:    int(t.header_count),
		Headers:  buf[:hl:hl],
		Body:     buf[hl : hl+int(t.body_len)],
		Complete: t.complete != 0,
	}
}

// TLSCerts is the most peer certificates TLS reports (leaf first).
const TLSCerts = C.WC_TLS_CERTS

// TLSInfo is the TLS handshake of a response's connection. ALPN, ServerName and Certs point
// into C memory owned by the response: valid until FreeResponse; copy what you keep.
type TLSInfo struct {
	Version     uint16
	CipherSuite uint16
	ALPN        []byte
	ServerName  []byte
	Certs       [TLSCerts][]byte // DER, leaf first; NCerts are set
	NCerts      int
}

func cBytes(p unsafe.Pointer, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), int(n))
}

// Timings are a response's phase timings in microseconds (zero for phases a reused
// connection skipped).
type Timings struct{ DNS, Connect, TLS, TTFB, Total uint64 }

// ResponseTimings reads a response's phase timings in one cgo call.
func ResponseTimings(r *Response) Timings {
	var t C.wirecore_timings
	if C.wirecore_response_timings(r, &t) != OK {
		return Timings{}
	}
	return Timings{DNS: uint64(t.dns_us), Connect: uint64(t.connect_us), TLS: uint64(t.tls_us),
		TTFB: uint64(t.ttfb_us), Total: uint64(t.total_us)}
}

// CacheStatus is where a response came from: WIRECORE_CACHE_NONE (0), HIT, MISS, STALE or
// REVALIDATED, as numbered in wirecore.h.
func CacheStatus(r *Response) int {
	return int(C.wirecore_response_cache_status(r))
}

// TLS reads what the response's TLS handshake agreed on, in one cgo call; false over plain
// TCP.
func TLS(r *Response) (TLSInfo, bool) {
	o := getOut()
	defer putOut(o)
	t := &o.tls
	if !C.wc_tls_get(r, t) {
		return TLSInfo{}, false
	}
	info := TLSInfo{
		Version:     uint16(t.info.version),
		CipherSuite: uint16(t.info.cipher_suite),
		ALPN:        cBytes(unsafe.Pointer(t.info.alpn), t.info.alpn_len),
		ServerName:  cBytes(unsafe.Pointer(t.info.server_name), t.name_len),
		NCerts:      int(t.n),
	}
	for i := range info.NCerts {
		info.Certs[i] = cBytes(unsafe.Pointer(t.der[i]), t.len[i])
	}
	return info, true
}

// CloseIdle closes the client's idle pooled connections.
func CloseIdle(c *Client) { C.wirecore_client_close_idle(c) }

// ReadNowait copies already-received body bytes into p.
func ReadNowait(r *Response, p []byte) (n int, eof bool, code int, e *Err) {
	var cn C.size_t
	var ceof C.bool
	rc := C.wirecore_response_read_nowait(r, bytesPtr(p), C.size_t(len(p)), &cn, &ceof, &e)
	return int(cn), bool(ceof), int(rc), e
}

// ReadQueue asks for the next body chunk; a completion with id follows on q.
func ReadQueue(r *Response, q *Queue, id uintptr) (int, *Err) {
	var e *Err
	rc := C.wc_read_queue(r, q, C.uintptr_t(id), &e)
	return int(rc), e
}

// SSE is a response's Server-Sent Events (wirecore_sse).
type SSE = C.wirecore_sse

// Event is one Server-Sent Event; Retry is -1 without a retry: field.
type Event struct {
	Event, Data, ID string
	Retry           int64
}

// ResponseEvents turns the rest of r's body into events.
func ResponseEvents(r *Response) (*SSE, int, *Err) {
	var s *SSE
	var e *Err
	rc := C.wirecore_response_events(r, &s, &e)
	return s, int(rc), e
}

// SSENextQueue asks for the next event; a completion with id follows on q.
func SSENextQueue(s *SSE, q *Queue, id uintptr) (int, *Err) {
	var e *Err
	rc := C.wc_sse_next_queue(s, q, C.uintptr_t(id), &e)
	return int(rc), e
}

// SSETake hands out the fetched event (copied into Go strings); end at the end of the stream.
func SSETake(s *SSE) (ev Event, end bool, rc int, e *Err) {
	var c C.wirecore_sse_event
	rc = int(C.wirecore_sse_take(s, &c, &e))
	if rc != OK {
		return ev, false, rc, e
	}
	if c.event == nil {
		return ev, true, rc, nil
	}
	ev = Event{
		Event: C.GoStringN(c.event, C.int(c.event_len)),
		Data:  C.GoStringN(c.data, C.int(c.data_len)),
		ID:    C.GoStringN(c.id, C.int(c.id_len)),
		Retry: int64(c.retry_ms),
	}
	return ev, false, rc, nil
}

// SSEFree closes and frees the events (a read in flight completes with cancelled).
func SSEFree(s *SSE) { C.wirecore_sse_free(s) }

// FreeResponse frees a response (cancelling a queued read).
func FreeResponse(r *Response) { C.wirecore_response_free(r) }

// FreeErr frees an error without reading it.
func FreeErr(e *Err) { C.wirecore_error_free(e) }

// WriteQueue copies a body chunk into the stream; a completion with id follows on q once the
// engine accepted it.
func WriteQueue(w *Writer, p []byte, q *Queue, id uintptr) (int, *Err) {
	var e *Err
	rc := C.wc_write_queue(w, bytesPtr(p), C.size_t(len(p)), q, C.uintptr_t(id), &e)
	return int(rc), e
}

// CloseWriter ends the body (abort: fail it instead) and frees the writer.
func CloseWriter(w *Writer, abort bool) { C.wirecore_body_writer_close(w, C.bool(abort)) }

// DeadLetter is a request that failed after every retry (wirecore_dead_letter, copied).
type DeadLetter struct {
	Method, URL        string
	Headers            [][2]string
	Body               []byte
	ErrorCode, Message string
	Status             int
	Attempts           int
	TimeMs             uint64
}

// ListenDeadLetters makes the client keep its dead letters for PollDeadLetters.
func ListenDeadLetters(c *Client) int { return int(C.wirecore_client_listen_dead_letters(c)) }

// PollDeadLetters waits up to timeoutMs for dead letters; closed once the client is closed and
// none are left.
func PollDeadLetters(c *Client, timeoutMs uint64) (letters []DeadLetter, closed bool) {
	ls := (*C.wc_letters)(C.malloc(C.size_t(unsafe.Sizeof(C.wc_letters{}))))
	defer C.free(unsafe.Pointer(ls))
	rc := C.wc_poll_letters(c, C.uint64_t(timeoutMs), ls)
	for i := 0; i < int(ls.n); i++ {
		o := &ls.items[i]
		l := DeadLetter{
			Method:    C.GoString(o.method),
			URL:       C.GoString(o.url),
			ErrorCode: C.GoString(o.error_code),
			Message:   C.GoString(o.message),
			Status:    int(o.status),
			Attempts:  int(o.attempts),
			TimeMs:    uint64(o.time_ms),
		}
		if o.body != nil {
			l.Body = C.GoBytes(unsafe.Pointer(o.body), C.int(o.body_len))
		}
		_ = json.Unmarshal([]byte(C.GoString(o.headers_json)), &l.Headers)
		letters = append(letters, l)
	}
	C.wc_free_letters(ls)
	return letters, rc == C.WIRECORE_CLOSED
}

// ListenSpans makes the client keep its finished spans for PollSpans; the error's code and
// message when it cannot (otel off: invalid_config).
func ListenSpans(c *Client) (code string, message string) {
	var e *Err
	if C.wirecore_client_listen_spans(c, &e) == OK {
		return "", ""
	}
	return ErrorInfo(e)
}

// PollSpans waits up to timeoutMs for finished spans, each its record's JSON; closed once the
// client is closed and none are left.
func PollSpans(c *Client, timeoutMs uint64) (spans []string, closed bool) {
	ss := (*C.wc_spans)(C.malloc(C.size_t(unsafe.Sizeof(C.wc_spans{}))))
	defer C.free(unsafe.Pointer(ss))
	rc := C.wc_poll_spans(c, C.uint64_t(timeoutMs), ss)
	for i := 0; i < int(ss.n); i++ {
		spans = append(spans, C.GoString(ss.items[i]))
	}
	C.wc_free_spans(ss)
	return spans, rc == C.WIRECORE_CLOSED
}

// LogRecord is one engine event (wirecore_log_record, copied).
type LogRecord struct {
	Level, Target, Message string
	Fields                 map[string]any
	TimeMs                 uint64
}

// LogEnable keeps the engine's events up to level ("off" stops) for PollLogs, process-wide.
func LogEnable(level string) (int, *Err) {
	cs := C.CString(level)
	defer C.free(unsafe.Pointer(cs))
	var e *Err
	rc := C.wirecore_log_enable(cs, &e)
	return int(rc), e
}

// PollLogs waits up to timeoutMs for log records.
func PollLogs(timeoutMs uint64) []LogRecord {
	ls := (*C.wc_logs)(C.malloc(C.size_t(unsafe.Sizeof(C.wc_logs{}))))
	defer C.free(unsafe.Pointer(ls))
	C.wc_poll_logs(C.uint64_t(timeoutMs), ls)
	out := make([]LogRecord, 0, int(ls.n))
	for i := 0; i < int(ls.n); i++ {
		o := &ls.items[i]
		r := LogRecord{
			Level:   C.GoString(o.level),
			Target:  C.GoString(o.target),
			Message: C.GoString(o.message),
			TimeMs:  uint64(o.time_ms),
		}
		d := json.NewDecoder(strings.NewReader(C.GoString(o.fields_json)))
		d.UseNumber()
		_ = d.Decode(&r.Fields)
		out = append(out, r)
	}
	C.wc_free_logs(ls)
	return out
}
