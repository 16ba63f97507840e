/* Finished spans through a C function pointer: wirecore_client_poll_spans calls it on this
 * thread with each request's span (the caller's traceparent as parent, error.type on a
 * failure); spans beyond otel.callback_queue that nobody polls are dropped and counted, and a
 * closed client still hands over what it queued.
 * Usage: span SERVER_INFO_JSON (the test server's first line) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

#define EXAMPLE "span"
#include "check.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT "00f067aa0ba902b7"
#define TP "00-" TRACE "-" PARENT "-01"

static char http_url[256];

/* What the callback saw, copied out of the spans (their pointers die with the call). */
#define MAX_SEEN 8
static struct {
    char trace_id[33], span_id[17], parent[17], name[16], status[8], attrs[1024], json[2048];
    int has_parent;
    unsigned long long start, end;
} seen[MAX_SEEN];
static int n_seen = 0;

static void on_span(void *ud, const wirecore_span *s) {
    CHECK(ud == (void *)&seen, "userdata passed through");
    if (n_seen == MAX_SEEN) return;
    snprintf(seen[n_seen].trace_id, sizeof seen[n_seen].trace_id, "%s", s->trace_id);
    snprintf(seen[n_seen].span_id, sizeof seen[n_seen].span_id, "%s", s->span_id);
    seen[n_seen].has_parent = s->parent_span_id != NULL;
    snprintf(seen[n_seen].parent, sizeof seen[n_seen].parent, "%s",
             s->parent_span_id ? s->parent_span_id : "");
    snprintf(seen[n_seen].name, sizeof seen[n_seen].name, "%s", s->name);
    snprintf(seen[n_seen].status, sizeof seen[n_seen].status, "%s", s->status);
    snprintf(seen[n_seen].attrs, sizeof seen[n_seen].attrs, "%s", s->attributes_json);
    snprintf(seen[n_seen].json, sizeof seen[n_seen].json, "%s", s->json);
    seen[n_seen].start = (unsigned long long)s->start_unix_nanos;
    seen[n_seen].end = (unsigned long long)s->end_unix_nanos;
    n_seen++;
}

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: span SERVER_INFO_JSON\n");
        return 2;
    }
    info_field(argv[1], "http", http_url, sizeof http_url);
    const char *port = strrchr(http_url, ':') + 1;

    /* Tracing off: no spans to listen to. */
    wirecore_client *off = NULL;
    if (wirecore_client_new(NULL, &off, NULL) != WIRECORE_OK) return 1;
    wirecore_error *err = NULL;
    CHECK(wirecore_client_listen_spans(off, &err) == WIRECORE_INVALID_CONFIG, "otel off");
    if (err) {
        const char *msg = wirecore_error_message(err);
        CHECK(msg && has(msg, "otel.enabled"), "the message names otel.enabled: %s", msg ? msg : "");
        wirecore_error_free(err);
    }
    wirecore_client_free(off);

    wirecore_client *c = NULL;
    if (wirecore_client_new("{\"otel\":{\"enabled\":true,\"callback_queue\":2}}", &c, NULL) != WIRECORE_OK)
        return 1;
    size_t n = 0;
    CHECK(wirecore_client_poll_spans(c, 0, on_span, &seen, &n) == WIRECORE_INVALID_ARGUMENT,
          "polling before listening is refused");
    CHECK(wirecore_client_listen_spans(c, NULL) == WIRECORE_OK, "listen");
    CHECK(wirecore_client_listen_spans(c, NULL) == WIRECORE_OK, "listen twice");

    char url[512];
    snprintf(url, sizeof url, "%s/status/200", http_url);
    wirecore_request *req = request_or_exit("GET", url);
    CHECK(wirecore_request_set_trace_context(req, TP, strlen(TP), NULL, 0, NULL) == WIRECORE_OK, "tp");
    CHECK(send_status(c, req) == 200, "traced GET");
    /* Refused: nothing listens on port 9 of loopback here. */
    CHECK(send_status(c, request_or_exit("GET", "http://127.0.0.1:9/x")) == -(int)WIRECORE_CONNECT, "refused");
    for (int i = 0; i < 100 && n_seen < 2; i++) {
        CHECK(wirecore_client_poll_spans(c, 100, on_span, &seen, &n) == WIRECORE_OK, "poll");
    }
    CHECK(n_seen == 2, "two spans, got %d", n_seen);
    if (n_seen >= 2) {
        char want[64];
        CHECK(strcmp(seen[0].trace_id, TRACE) == 0, "trace %s", seen[0].trace_id);
        CHECK(seen[0].has_parent && strcmp(seen[0].parent, PARENT) == 0, "parent %s", seen[0].parent);
        CHECK(strlen(seen[0].span_id) == 16 && strcmp(seen[0].span_id, PARENT) != 0, "own span id");
        CHECK(strcmp(seen[0].name, "GET") == 0 && strcmp(seen[0].status, "unset") == 0, "GET unset");
        CHECK(seen[0].start > 1700000000000000000ULL && seen[0].end >= seen[0].start, "times");
        CHECK(has(seen[0].attrs, "\"http.request.method\":\"GET\""), "method: %s", seen[0].attrs);
        CHECK(has(seen[0].attrs, "\"server.address\":\"127.0.0.1\""), "address: %s", seen[0].attrs);
        snprintf(want, sizeof want, "\"server.port\":%s", port);
        CHECK(has(seen[0].attrs, want), "port: %s", seen[0].attrs);
        CHECK(has(seen[0].attrs, "\"http.response.status_code\":200"), "status: %s", seen[0].attrs);
        CHECK(!has(seen[0].attrs, "error.type"), "no error.type: %s", seen[0].attrs);
        CHECK(has(seen[0].json, "\"kind\":\"client\"") && has(seen[0].json, "\"parent_span_id\":\"" PARENT "\""),
              "json: %s", seen[0].json);
        CHECK(!seen[1].has_parent && strcmp(seen[1].status, "error") == 0, "refused: error, no parent");
        CHECK(has(seen[1].attrs, "\"error.type\":\"connect\""), "error.type: %s", seen[1].attrs);
    }

    /* Nobody polls: two spans wait in the queue of 2, three are dropped, and every request
     * completes meanwhile. */
    snprintf(url, sizeof url, "%s/status/204", http_url);
    for (int i = 0; i < 5; i++) CHECK(send_status(c, request_or_exit("GET", url)) == 204, "GET %d", i);
    CHECK(wirecore_client_flush_telemetry(c, 5000) == WIRECORE_OK, "flush");
    char *stats = NULL;
    CHECK(wirecore_client_stats_json(c, &stats, NULL) == WIRECORE_OK, "stats");
    CHECK(stats && has(stats, "\"otel\":{\"exported\":4,\"dropped\":3}"), "otel stats: %s",
          stats ? strstr(stats, "\"otel\"") : "");
    wirecore_string_free(stats);

    /* Closed: the two queued spans are still handed over, then the poll says closed. */
    wirecore_client_close(c, 1000);
    int before = n_seen;
    CHECK(wirecore_client_poll_spans(c, 1000, on_span, &seen, &n) == WIRECORE_OK && n == 2,
          "the queued spans after close, got %zu", n);
    CHECK(n_seen == before + 2, "handed over");
    CHECK(wirecore_client_poll_spans(c, 1000, on_span, &seen, &n) == WIRECORE_CLOSED && n == 0,
          "closed once the client is and the queue is empty");
    wirecore_client_free(c);
    if (failures) return 1;
    printf("span: ok\n");
    return 0;
}
