/* Per-request options: idempotent, rate-limit and balance keys, phase timeouts, priority
 * (header and queue order), their bad values, the diagnostics report, and the OpenTelemetry
 * export (flush, close, the stats' otel counters).
 * Usage: request_options SERVER_INFO_JSON (the test server's first line) */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wirecore.h"

#define EXAMPLE "request_options"
#include "check.h"

static char http_url[256], control_url[256];

static wirecore_client *client_new(const char *config) {
    wirecore_client *c = NULL;
    wirecore_error *err = NULL;
    if (wirecore_client_new(config, &c, &err) != WIRECORE_OK) {
        fprintf(stderr, "request_options: client %s: %s\n", config, wirecore_error_message(err));
        exit(1);
    }
    return c;
}

static wirecore_request *make(const char *method, const char *base, const char *path) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    wirecore_request *req = NULL;
    wirecore_error *err = NULL;
    if (wirecore_request_new(method, strlen(method), url, strlen(url), &req, &err) != WIRECORE_OK) {
        fprintf(stderr, "request_options: request %s: %s\n", url, wirecore_error_message(err));
        exit(1);
    }
    return req;
}

/* Sends `req`; returns the status code (or the negated wirecore_code) and the body (to free). */
static int send(wirecore_client *c, wirecore_request *req, char **body) {
    wirecore_response *resp = NULL;
    wirecore_error *err = NULL;
    wirecore_code rc = wirecore_client_send(c, req, &resp, &err);
    wirecore_error_free(err);
    if (body) *body = NULL;
    if (rc != WIRECORE_OK) return -(int)rc;
    int status = wirecore_response_status(resp);
    const uint8_t *data;
    size_t len;
    if (body && wirecore_response_body(resp, &data, &len, NULL) == WIRECORE_OK) {
        *body = malloc(len + 1);
        if (!*body) abort();
        memcpy(*body, data, len);
        (*body)[len] = 0;
    }
    wirecore_response_free(resp);
    return status;
}

/* A call to the test server's control API; returns its body (to free). */
static char *control(wirecore_client *c, const char *method, const char *path, const char *json) {
    wirecore_request *req = make(method, control_url, path);
    if (json) wirecore_request_set_body(req, (const uint8_t *)json, strlen(json), NULL);
    char *body = NULL;
    int status = send(c, req, &body);
    CHECK(status == 200, "control %s: %d", path, status);
    return body;
}

/* A counter from /_control/counters, e.g. "requests". */
static long counter(wirecore_client *ctl, const char *name) {
    char *body = control(ctl, "GET", "/_control/counters", NULL);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = body ? strstr(body, pat) : NULL;
    long n = p ? strtol(p + strlen(pat), NULL, 10) : -1;
    free(body);
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void reset(wirecore_client *ctl) { free(control(ctl, "POST", "/_control/reset", "{}")); }

static const char *SCRIPT_503_THEN_200 =
    "{\"path\":\"/s/p\",\"replies\":[{\"status\":503},{\"status\":200,\"body\":\"ok\"}]}";

/* A POST is retried only when declared idempotent; a GET declared non-idempotent is not. */
static void idempotent(wirecore_client *ctl) {
    wirecore_client *c = client_new("{\"retry\":{\"backoff_base_ms\":5,\"backoff_max_ms\":5}}");
    reset(ctl);
    free(control(ctl, "POST", "/_control/script", SCRIPT_503_THEN_200));
    wirecore_request *req = make("POST", http_url, "/s/p");
    wirecore_request_set_body(req, (const uint8_t *)"x", 1, NULL);
    CHECK(send(c, req, NULL) == 503, "plain POST is not retried");
    CHECK(counter(ctl, "requests") == 1, "plain POST sent once");

    reset(ctl);
    free(control(ctl, "POST", "/_control/script", SCRIPT_503_THEN_200));
    req = make("POST", http_url, "/s/p");
    wirecore_request_set_body(req, (const uint8_t *)"x", 1, NULL);
    CHECK(wirecore_request_set_idempotent(req, true) == WIRECORE_OK, "set_idempotent");
    char *body = NULL;
    CHECK(send(c, req, &body) == 200, "idempotent POST is retried");
    CHECK(body && strcmp(body, "ok") == 0, "retried body: %s", body ? body : "(none)");
    free(body);
    CHECK(counter(ctl, "requests") == 2, "idempotent POST sent twice");

    reset(ctl);
    free(control(ctl, "POST", "/_control/script", "{\"path\":\"/s/g\",\"replies\":[{\"status\":503},{\"status\":200}]}"));
    req = make("GET", http_url, "/s/g");
    wirecore_request_set_idempotent(req, false);
    CHECK(send(c, req, NULL) == 503, "GET declared non-idempotent is not retried");
    CHECK(counter(ctl, "requests") == 1, "GET sent once");
    wirecore_client_free(c);
}

/* With scope "key", each key has its own bucket. */
static void rate_limit_key(wirecore_client *ctl) {
    wirecore_client *c = client_new(
        "{\"rate_limit\":{\"enabled\":true,\"scope\":\"key\",\"requests\":1,\"per_ms\":60000,"
        "\"mode\":\"fail\"}}");
    reset(ctl);
    const char *keys[] = {"alice", "alice", "bob", NULL};
    const int want[] = {200, -WIRECORE_RATE_LIMITED, 200, 200};
    for (int i = 0; i < 4; i++) {
        wirecore_request *req = make("GET", http_url, "/bytes/1");
        if (keys[i]) {
            CHECK(wirecore_request_set_rate_limit_key(req, keys[i], strlen(keys[i]), NULL) == WIRECORE_OK,
                  "set key");
        } else {
            /* Set then cleared: counts under the origin, a bucket of its own. */
            wirecore_request_set_rate_limit_key(req, "alice", 5, NULL);
            CHECK(wirecore_request_set_rate_limit_key(req, NULL, 0, NULL) == WIRECORE_OK, "clear key");
        }
        int got = send(c, req, NULL);
        CHECK(got == want[i], "request %d (key %s): got %d, want %d", i, keys[i] ? keys[i] : "none",
              got, want[i]);
    }
    CHECK(counter(ctl, "requests") == 3, "the limited request never reached the server");
    wirecore_client_free(c);
}

/* wirecore_request_set_redirect: follow (with a hop limit), manual, error; then the defaults again. */
static void redirect_policy(wirecore_client *ctl) {
    wirecore_client *c = client_new("{\"redirect\":{\"max\":2}}");
    reset(ctl);
    struct {
        const char *policy;
        int64_t max;
        int want;
    } cases[] = {
        {NULL, -1, -WIRECORE_TOO_MANY_REDIRECTS}, /* the config's max 2 < 3 hops */
        {NULL, 3, 200},
        {"follow", 0, 302},
        {"manual", 5, 302},
        {"error", -1, -WIRECORE_TOO_MANY_REDIRECTS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wirecore_request *req = make("GET", http_url, "/redirect/3");
        const char *p = cases[i].policy;
        CHECK(wirecore_request_set_redirect(req, p, p ? strlen(p) : 0, cases[i].max, NULL) == WIRECORE_OK,
              "set redirect %zu", i);
        int got = send(c, req, NULL);
        CHECK(got == cases[i].want, "redirect %s max %lld: got %d, want %d", p ? p : "(default)",
              (long long)cases[i].max, got, cases[i].want);
    }
    /* 3 + 4 + 1 + 1 + 1 requests: manual and error stop at the first 302. */
    CHECK(counter(ctl, "requests") == 10, "requests: %lld", (long long)counter(ctl, "requests"));
    /* Set, then cleared with NULL and -1: the config's policy again. */
    wirecore_request *req = make("GET", http_url, "/redirect/1");
    wirecore_request_set_redirect(req, "manual", 6, 0, NULL);
    CHECK(wirecore_request_set_redirect(req, NULL, 0, -1, NULL) == WIRECORE_OK, "clear redirect");
    CHECK(send(c, req, NULL) == 200, "cleared policy follows");
    wirecore_client_free(c);
}

/* Server-Sent Events: blocking reads across reconnections (Last-Event-ID, the server's retry:),
 * then the queued read. */
static void sse_events(wirecore_client *ctl) {
    wirecore_client *c = client_new(NULL);
    reset(ctl);
    wirecore_response *resp = NULL;
    wirecore_error *err = NULL;
    CHECK(wirecore_client_send(c, make("GET", http_url, "/sse?events=2&total=5&retry=10&cut=1"), &resp, &err) ==
              WIRECORE_OK,
          "sse send");
    wirecore_sse *sse = NULL;
    CHECK(wirecore_response_events(resp, &sse, &err) == WIRECORE_OK, "events");
    char ids[16] = {0};
    size_t n = 0;
    for (int i = 0; i < 10 && sse; i++) {
        wirecore_sse_event ev;
        if (wirecore_sse_next(sse, &ev, &err) != WIRECORE_OK) {
            CHECK(0, "sse_next: %s", wirecore_error_message(err));
            wirecore_error_free(err);
            err = NULL;
            break;
        }
        if (!ev.event) break;
        CHECK(strcmp(ev.event, "message") == 0 && ev.id_len == 1 && ev.retry_ms == -1, "event %d", i);
        if (i == 2) CHECK(strstr(ev.data, "\"last_event_id\":\"1\"") != NULL, "resumed after id 1: %s", ev.data);
        if (n + 1 < sizeof ids) ids[n++] = ev.id[0];
    }
    CHECK(strcmp(ids, "01234") == 0, "ids %s", ids);
    CHECK(counter(ctl, "requests") == 4, "three connections and the 204");
    wirecore_sse_free(sse);
    /* The body now belongs to the events. */
    uint8_t b[8];
    size_t got = 0;
    CHECK(wirecore_response_read(resp, b, sizeof b, &got, NULL) == WIRECORE_INVALID_REQUEST, "body given away");
    wirecore_response_free(resp);

    /* Queued: a completion per event, then wirecore_sse_take. */
    resp = NULL;
    CHECK(wirecore_client_send(c, make("GET", http_url, "/sse?events=2&total=2"), &resp, NULL) == WIRECORE_OK,
          "sse send 2");
    CHECK(wirecore_response_events(resp, &sse, NULL) == WIRECORE_OK, "events 2");
    wirecore_queue *q = wirecore_queue_new();
    int seen = 0;
    for (int i = 0; i < 5; i++) {
        CHECK(wirecore_sse_next_queue(sse, q, NULL, NULL) == WIRECORE_OK, "next_queue");
        wirecore_completion done[1];
        CHECK(wirecore_queue_wait(q, done, 1, 30000) == 1, "completion");
        CHECK(done[0].code == WIRECORE_OK, "completion code %d", (int)done[0].code);
        wirecore_sse_event ev;
        CHECK(wirecore_sse_take(sse, &ev, NULL) == WIRECORE_OK, "take");
        if (!ev.event) break;
        seen++;
    }
    CHECK(seen == 2, "queued events: %d", seen);
    CHECK(wirecore_sse_take(sse, &(wirecore_sse_event){0}, &err) == WIRECORE_INVALID_REQUEST, "nothing fetched");
    wirecore_error_free(err);
    wirecore_sse_free(sse);
    wirecore_queue_free(q);
    wirecore_response_free(resp);
    wirecore_client_free(c);
}

static atomic_int finished;

static void on_done(void *userdata, wirecore_code code, wirecore_response *resp, wirecore_error *err) {
    (void)userdata;
    (void)code;
    wirecore_response_free(resp);
    wirecore_error_free(err);
    atomic_fetch_add(&finished, 1);
}

static void wait_finished(int n) {
    double deadline = now_s() + 30;
    while (atomic_load(&finished) < n && now_s() < deadline) pause_ms(5);
    CHECK(atomic_load(&finished) == n, "callbacks: %d of %d", atomic_load(&finished), n);
}

/* The read and pool phase timeouts fire with their own codes; 0 keeps the config's. */
static void phase_timeouts(wirecore_client *ctl) {
    wirecore_client *c = client_new(
        "{\"timeouts\":{\"read_idle_ms\":10000,\"pool_acquire_ms\":10000},"
        "\"pool\":{\"max_connections_per_host\":1},\"retry\":{\"enabled\":false}}");
    reset(ctl);
    wirecore_request *req = make("GET", http_url, "/delay/3000");
    CHECK(wirecore_request_set_read_timeout_ms(req, 100, NULL) == WIRECORE_OK, "set read");
    double t = now_s();
    int got = send(c, req, NULL);
    CHECK(got == -WIRECORE_TIMEOUT_READ, "read timeout: got %d", got);
    CHECK(now_s() - t < 2.5, "read timeout took %.2f s", now_s() - t);

    atomic_store(&finished, 0);
    wirecore_request *busy = make("GET", http_url, "/delay/1500");
    CHECK(wirecore_client_submit(c, busy, on_done, NULL, NULL, NULL) == WIRECORE_OK, "submit");
    double deadline = now_s() + 10;
    while (counter(ctl, "requests_in_flight") != 1 && now_s() < deadline) pause_ms(5);
    req = make("GET", http_url, "/bytes/1");
    CHECK(wirecore_request_set_pool_timeout_ms(req, 50, NULL) == WIRECORE_OK, "set pool");
    got = send(c, req, NULL);
    CHECK(got == -WIRECORE_TIMEOUT_POOL, "pool timeout: got %d", got);
    wait_finished(1);

    /* Overrides of 0 keep the config's; a connect override leaves a loopback connect alone. */
    req = make("GET", http_url, "/bytes/1");
    wirecore_request_set_connect_timeout_ms(req, 5000, NULL);
    wirecore_request_set_read_timeout_ms(req, 0, NULL);
    wirecore_request_set_pool_timeout_ms(req, 0, NULL);
    CHECK(send(c, req, NULL) == 200, "cleared overrides");
    wirecore_client_free(c);

    /* The one rule (wirecore::RequestOptions): no request has a zero timeout; C's 0 is "unset".
     * With the config's total off, a total of 0 must not fail the request at once. */
    c = client_new("{\"timeouts\":{\"total_ms\":0}}");
    req = make("GET", http_url, "/delay/50");
    CHECK(wirecore_request_set_timeout_ms(req, 20, NULL) == WIRECORE_OK, "set total");
    CHECK(wirecore_request_set_timeout_ms(req, 0, NULL) == WIRECORE_OK, "clear total");
    got = send(c, req, NULL);
    CHECK(got == 200, "a total of 0 is unset, not a zero deadline: got %d", got);
    wirecore_client_free(c);
}

/* Sent as the Priority header, replacing one the caller set (in either order); without
 * set_priority the caller's header goes unchanged (urgency -1: no call). */
/* HTTP Basic credentials, encoded by the core; they replace an Authorization header. */
static void basic_auth(void) {
    wirecore_client *c = client_new(NULL);
    struct {
        const char *user, *password, *want;
    } cases[] = {
        {"Aladdin", "open sesame", "\"authorization\":\"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\""},
        {"user", NULL, "\"authorization\":\"Basic dXNlcjo=\""},
        {"us\xc3\xa9r", "p:w", "\"authorization\":\"Basic dXPDqXI6cDp3\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wirecore_request *req = make("GET", http_url, "/headers");
        wirecore_request_add_header(req, "Authorization", 13, "Bearer old", 10, NULL);
        const char *pw = cases[i].password;
        CHECK(wirecore_request_set_basic_auth(req, cases[i].user, strlen(cases[i].user), pw, pw ? strlen(pw) : 0,
                                              NULL) == WIRECORE_OK,
              "set_basic_auth %zu", i);
        char *body = NULL;
        CHECK(send(c, req, &body) == 200, "basic auth %zu", i);
        CHECK(body && strstr(body, cases[i].want) && !strstr(body, "Bearer"), "case %zu: want %s in %s", i,
              cases[i].want, body ? body : "(none)");
        free(body);
    }
    wirecore_request *req = make("GET", http_url, "/headers");
    wirecore_error *err = NULL;
    CHECK(wirecore_request_set_basic_auth(req, "\xff", 1, NULL, 0, &err) == WIRECORE_INVALID_ARGUMENT,
          "invalid UTF-8 user");
    CHECK(err && strstr(wirecore_error_message(err), "UTF-8"), "message: %s", err ? wirecore_error_message(err) : "");
    wirecore_error_free(err);
    CHECK(wirecore_request_set_basic_auth(req, NULL, 3, NULL, 0, NULL) == WIRECORE_INVALID_ARGUMENT, "NULL user");
    CHECK(wirecore_request_set_basic_auth(NULL, "u", 1, NULL, 0, NULL) == WIRECORE_INVALID_ARGUMENT, "NULL request");
    wirecore_request_free(req);
    wirecore_client_free(c);
}

static void priority_header(void) {
    wirecore_client *c = client_new(NULL);
    struct {
        int urgency, incremental;
        const char *header, *want;
        int header_first;
    } cases[] = {
        {0, 0, NULL, "\"priority\":\"u=0\"", 0},
        {7, 1, NULL, "\"priority\":\"u=7, i\"", 0},
        {1, 0, "u=6", "\"priority\":\"u=1\"", 0},
        {1, 0, "u=6", "\"priority\":\"u=1\"", 1},
        {-1, 0, "u=6, i", "\"priority\":\"u=6, i\"", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wirecore_request *req = make("GET", http_url, "/headers");
        if (cases[i].header && cases[i].header_first)
            wirecore_request_add_header(req, "Priority", 8, cases[i].header, strlen(cases[i].header), NULL);
        if (cases[i].urgency >= 0)
            CHECK(wirecore_request_set_priority(req, (uint8_t)cases[i].urgency, cases[i].incremental, NULL) ==
                      WIRECORE_OK,
                  "set_priority");
        if (cases[i].header && !cases[i].header_first)
            wirecore_request_add_header(req, "Priority", 8, cases[i].header, strlen(cases[i].header), NULL);
        char *body = NULL;
        CHECK(send(c, req, &body) == 200, "priority %zu", i);
        CHECK(body && strstr(body, cases[i].want), "case %zu: want %s in %s", i, cases[i].want,
              body ? body : "(none)");
        free(body);
    }
    /* The forms every language accepts, through the core's one parser. */
    struct {
        const char *s;
        wirecore_code code;
        int urgency, incremental;
    } forms[] = {
        {"0", WIRECORE_OK, 0, 0},         {"7", WIRECORE_OK, 7, 0},      {"highest", WIRECORE_OK, 0, 0},
        {"High", WIRECORE_OK, 1, 0},      {"normal", WIRECORE_OK, 3, 0}, {"LOW", WIRECORE_OK, 5, 0},
        {"lowest", WIRECORE_OK, 7, 0},    {"u=6, i", WIRECORE_OK, 6, 1}, {"8", WIRECORE_INVALID_REQUEST, 0, 0},
        {"u=9", WIRECORE_INVALID_REQUEST, 0, 0}, {"urgent", WIRECORE_INVALID_REQUEST, 0, 0},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        uint8_t u = 99;
        bool inc = false;
        wirecore_error *err = NULL;
        wirecore_code rc = wirecore_priority_parse(forms[i].s, strlen(forms[i].s), &u, &inc, &err);
        CHECK(rc == forms[i].code, "parse %s: %s", forms[i].s, wirecore_code_str(rc));
        if (rc == WIRECORE_OK)
            CHECK(u == forms[i].urgency && inc == (bool)forms[i].incremental, "parse %s: u=%u i=%d", forms[i].s,
                  u, inc);
        else
            CHECK(err && strstr(wirecore_error_message(err), "request option priority"), "parse %s: message %s",
                  forms[i].s, err ? wirecore_error_message(err) : "(none)");
        wirecore_error_free(err);
    }
    uint8_t u;
    bool inc;
    CHECK(wirecore_priority_parse("1", 1, NULL, &inc, NULL) == WIRECORE_INVALID_ARGUMENT, "parse NULL out");
    CHECK(wirecore_priority_parse(NULL, 1, &u, &inc, NULL) == WIRECORE_INVALID_ARGUMENT, "parse NULL s");
    char *body = NULL;
    CHECK(send(c, make("GET", http_url, "/headers"), &body) == 200, "no priority");
    CHECK(body && !strstr(body, "\"priority\""), "no priority header unless asked: %s", body ? body : "");
    free(body);
    wirecore_client_free(c);
}

static char order[8][16];
static atomic_int order_len;

static void on_ordered(void *userdata, wirecore_code code, wirecore_response *resp, wirecore_error *err) {
    (void)code;
    int i = atomic_fetch_add(&order_len, 1);
    if (i < 8) snprintf(order[i], sizeof order[i], "%s", (const char *)userdata);
    wirecore_response_free(resp);
    wirecore_error_free(err);
    atomic_fetch_add(&finished, 1);
}

/* A gauge of the pool's totals ("pending", "active") from the stats snapshot. */
static long pool_gauge(wirecore_client *c, const char *name) {
    char *s = NULL;
    if (wirecore_client_stats_json(c, &s, NULL) != WIRECORE_OK) return -1;
    char key[32];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(s, key);
    long n = p ? strtol(p + strlen(key), NULL, 10) : -1;
    wirecore_string_free(s);
    return n;
}

static long pending(wirecore_client *c) { return pool_gauge(c, "pending"); }

/* Requests waiting for the one connection go out most urgent first, in order within an urgency. */
static void priority_orders_the_queue(void) {
    wirecore_client *c = client_new("{\"pool\":{\"max_connections_per_host\":1}}");
    atomic_store(&finished, 0);
    atomic_store(&order_len, 0);
    static const struct {
        const char *name, *path;
        int urgency; /* -1: none */
    } reqs[] = {
        {"busy", "/delay/3000", -1}, {"low-0", "/delay/5", 7}, {"low-1", "/delay/5", 7},
        {"default", "/delay/5", -1}, {"urgent", "/delay/5", 0},
    };
    for (int i = 0; i < 5; i++) {
        wirecore_request *req = make("GET", http_url, reqs[i].path);
        if (reqs[i].urgency >= 0) wirecore_request_set_priority(req, (uint8_t)reqs[i].urgency, false, NULL);
        CHECK(wirecore_client_submit(c, req, on_ordered, (void *)reqs[i].name, NULL, NULL) == WIRECORE_OK,
              "submit %s", reqs[i].name);
        /* The busy request holds the connection (3 s: valgrind slows each submit and stats
         * call) while each next one queues behind it. */
        double deadline = now_s() + 10;
        if (i == 0) {
            /* Submission is asynchronous: wait until the busy request holds the connection. */
            while (pool_gauge(c, "active") != 1 && now_s() < deadline) pause_ms(2);
            CHECK(pool_gauge(c, "active") == 1, "busy holds the connection");
        }
        while (pending(c) != i && now_s() < deadline) pause_ms(2);
        CHECK(pending(c) == i, "waiting: %ld, want %d", pending(c), i);
    }
    wait_finished(5);
    const char *want[] = {"busy", "urgent", "default", "low-0", "low-1"};
    for (int i = 0; i < 5; i++)
        CHECK(strcmp(order[i], want[i]) == 0, "order[%d] = %s, want %s", i, order[i], want[i]);
    wirecore_client_free(c);
}

static void check_code(const char *what, wirecore_code got, wirecore_error *err, wirecore_code want,
                       const char *in_message) {
    CHECK(got == want, "%s: got %s, want %s", what, wirecore_code_str(got), wirecore_code_str(want));
    if (in_message) {
        const char *m = err ? wirecore_error_message(err) : "";
        CHECK(strstr(m, in_message), "%s: message %s lacks %s", what, m, in_message);
        printf("%-26s -> %s\n", what, m);
    }
    wirecore_error_free(err);
}

/* Runs CALL (which may set `err`) before reading `err`. */
#define expect_code(what, call, err_, want, in_message)      \
    do {                                                      \
        wirecore_code got_ = (call);                          \
        check_code((what), got_, (err_), (want), (in_message)); \
    } while (0)

/* Bad values fail with a code and a message naming the argument, before any I/O. */
static void bad_values(void) {
    wirecore_request *req = make("GET", "http://127.0.0.1:1", "/");
    wirecore_error *err = NULL;
    expect_code("urgency 8", wirecore_request_set_priority(req, 8, false, &err), err,
                WIRECORE_INVALID_REQUEST, "got 8");
    err = NULL;
    expect_code("connect > 1 year", wirecore_request_set_connect_timeout_ms(req, UINT64_MAX, &err), err,
                WIRECORE_INVALID_REQUEST, "request option connect_timeout must be at most");
    err = NULL;
    expect_code("read > 1 year", wirecore_request_set_read_timeout_ms(req, 31536000001ULL, &err), err,
                WIRECORE_INVALID_REQUEST, "request option read_timeout");
    err = NULL;
    expect_code("pool 1 year is fine", wirecore_request_set_pool_timeout_ms(req, 31536000000ULL, &err), err,
                WIRECORE_OK, NULL);
    err = NULL;
    expect_code("pool > 1 year", wirecore_request_set_pool_timeout_ms(req, 31536000001ULL, &err), err,
                WIRECORE_INVALID_REQUEST, "request option pool_timeout");
    err = NULL;
    expect_code("total > 1 year", wirecore_request_set_timeout_ms(req, 31536000001ULL, &err), err,
                WIRECORE_INVALID_REQUEST, "request option timeout must be at most 31536000000 ms");
    err = NULL;
    expect_code("total 1 year is fine", wirecore_request_set_timeout_ms(req, 31536000000ULL, &err), err,
                WIRECORE_OK, NULL);
    err = NULL;
    expect_code("total: NULL request", wirecore_request_set_timeout_ms(NULL, 1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "handle");
    err = NULL;
    char long_key[1026];
    memset(long_key, 'k', sizeof long_key);
    expect_code("key > 1024 bytes", wirecore_request_set_rate_limit_key(req, long_key, 1025, &err), err,
                WIRECORE_INVALID_REQUEST, "rate_limit_key must be at most 1024 bytes");
    err = NULL;
    expect_code("empty key", wirecore_request_set_rate_limit_key(req, "", 0, &err), err,
                WIRECORE_INVALID_REQUEST, "empty");
    err = NULL;
    expect_code("key NULL with a length", wirecore_request_set_rate_limit_key(req, NULL, 3, &err), err,
                WIRECORE_INVALID_ARGUMENT, "NULL");
    err = NULL;
    expect_code("key invalid UTF-8", wirecore_request_set_rate_limit_key(req, "\xff", 1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "UTF-8");
    err = NULL;
    expect_code("redirect name", wirecore_request_set_redirect(req, "sideways", 8, -1, &err), err,
                WIRECORE_INVALID_REQUEST, "redirect must be \"follow\", \"manual\" or \"error\", got \"sideways\"");
    err = NULL;
    expect_code("max_redirects > 1000", wirecore_request_set_redirect(req, NULL, 0, 1001, &err), err,
                WIRECORE_INVALID_REQUEST, "max_redirects must be 0 to 1000, got 1001");
    err = NULL;
    expect_code("max_redirects past 32 bits", wirecore_request_set_redirect(req, "follow", 6, 1LL << 40, &err),
                err, WIRECORE_INVALID_REQUEST, "got 1099511627776");
    err = NULL;
    expect_code("redirect NULL with a length", wirecore_request_set_redirect(req, NULL, 3, -1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "NULL");
    err = NULL;
    expect_code("redirect: NULL request", wirecore_request_set_redirect(NULL, "error", 5, -1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "handle");
    err = NULL;
    /* The balance key has the rate-limit key's bounds and messages (RequestOptions::validate). */
    expect_code("balance key > 1024 bytes", wirecore_request_set_balance_key(req, long_key, 1025, &err), err,
                WIRECORE_INVALID_REQUEST, "balance_key must be at most 1024 bytes, got 1025");
    err = NULL;
    expect_code("balance key 1024 bytes is fine", wirecore_request_set_balance_key(req, long_key, 1024, &err),
                err, WIRECORE_OK, NULL);
    err = NULL;
    expect_code("empty balance key", wirecore_request_set_balance_key(req, "", 0, &err), err,
                WIRECORE_INVALID_REQUEST, "balance_key must not be empty");
    err = NULL;
    expect_code("balance key NULL with a length", wirecore_request_set_balance_key(req, NULL, 3, &err), err,
                WIRECORE_INVALID_ARGUMENT, "NULL");
    err = NULL;
    expect_code("balance key invalid UTF-8", wirecore_request_set_balance_key(req, "\xff", 1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "UTF-8");
    err = NULL;
    expect_code("balance key: NULL request", wirecore_request_set_balance_key(NULL, "a", 1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "handle");
    err = NULL;
    expect_code("balance key cleared", wirecore_request_set_balance_key(req, NULL, 0, &err), err, WIRECORE_OK,
                NULL);
    err = NULL;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    expect_code("trace context", wirecore_request_set_trace_context(req, tp, strlen(tp), "k=v", 3, &err), err,
                WIRECORE_OK, NULL);
    err = NULL;
    expect_code("traceparent all-zero trace id",
                wirecore_request_set_trace_context(req, "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                                                   55, NULL, 0, &err),
                err, WIRECORE_INVALID_REQUEST, "traceparent must be a W3C traceparent");
    err = NULL;
    expect_code("tracestate with a bad member", wirecore_request_set_trace_context(req, tp, strlen(tp), "K=v", 3, &err),
                err, WIRECORE_INVALID_REQUEST, "tracestate must be");
    err = NULL;
    expect_code("traceparent NULL with a length", wirecore_request_set_trace_context(req, NULL, 3, NULL, 0, &err), err,
                WIRECORE_INVALID_ARGUMENT, "traceparent is NULL");
    err = NULL;
    expect_code("trace context cleared", wirecore_request_set_trace_context(req, NULL, 0, NULL, 0, &err), err,
                WIRECORE_OK, NULL);
    err = NULL;
    expect_code("priority: NULL request", wirecore_request_set_priority(NULL, 1, false, &err), err,
                WIRECORE_INVALID_ARGUMENT, "handle");
    err = NULL;
    expect_code("key: NULL request", wirecore_request_set_rate_limit_key(NULL, "a", 1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "handle");
    err = NULL;
    expect_code("read: NULL request", wirecore_request_set_read_timeout_ms(NULL, 1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "handle");
    expect_code("cache mode unknown", wirecore_request_set_cache_mode(req, "sometimes", 9, &err), err,
                WIRECORE_INVALID_REQUEST, "request option cache must be one of default, no-store");
    err = NULL;
    expect_code("cache mode NULL", wirecore_request_set_cache_mode(req, NULL, 3, &err), err,
                WIRECORE_INVALID_ARGUMENT, "NULL");
    err = NULL;
    expect_code("cache mode invalid UTF-8", wirecore_request_set_cache_mode(req, "\xff", 1, &err), err,
                WIRECORE_INVALID_ARGUMENT, "UTF-8");
    err = NULL;
    expect_code("cache mode: NULL request", wirecore_request_set_cache_mode(NULL, "reload", 6, &err), err,
                WIRECORE_INVALID_ARGUMENT, "handle");
    err = NULL;
    expect_code("cache mode any case", wirecore_request_set_cache_mode(req, "No-Cache", 8, &err), err,
                WIRECORE_OK, NULL);
    CHECK(wirecore_response_cache_status(NULL) == WIRECORE_CACHE_NONE, "cache status of NULL");
    expect_code("idempotent: NULL request", wirecore_request_set_idempotent(NULL, true), NULL,
                WIRECORE_INVALID_ARGUMENT, NULL);
    /* A wrong handle type is caught by its tag. */
    wirecore_client *c = client_new(NULL);
    expect_code("idempotent: a client", wirecore_request_set_idempotent((wirecore_request *)c, true), NULL,
                WIRECORE_INVALID_ARGUMENT, NULL);
    wirecore_client_free(c);
    wirecore_request_free(req);
}

/* The cache mode and the cache status: only-if-cached answers 504 until a response is stored. */
static void cache_mode(wirecore_client *ctl) {
    reset(ctl);
    wirecore_client *c = client_new("{\"cache\": {\"enabled\": true}}");
    const char *path = "/cache/c?cache_control=max-age=60";
    const char *modes[] = {"only-if-cached", "default", "only-if-cached", "no-store", "reload"};
    int want_status[] = {504, 200, 200, 200, 200};
    wirecore_cache_status want_cache[] = {WIRECORE_CACHE_MISS, WIRECORE_CACHE_MISS, WIRECORE_CACHE_HIT,
                                          WIRECORE_CACHE_NONE, WIRECORE_CACHE_MISS};
    for (int i = 0; i < 5; i++) {
        wirecore_request *req = make("GET", http_url, path);
        CHECK(wirecore_request_set_cache_mode(req, modes[i], strlen(modes[i]), NULL) == WIRECORE_OK, "set %s",
              modes[i]);
        wirecore_response *resp = NULL;
        CHECK(wirecore_client_send(c, req, &resp, NULL) == WIRECORE_OK, "send %s", modes[i]);
        if (!resp) continue;
        CHECK(wirecore_response_status(resp) == want_status[i], "%s: status %d", modes[i],
              wirecore_response_status(resp));
        CHECK(wirecore_response_cache_status(resp) == want_cache[i], "%s: cache status %d", modes[i],
              (int)wirecore_response_cache_status(resp));
        wirecore_response_free(resp);
    }
    CHECK(counter(ctl, "requests") == 3, "the server saw %ld requests, want 3", counter(ctl, "requests"));
    wirecore_client_free(c);
}

/* The health report is JSON with the documented fields. */
static void diagnostics(void) {
    wirecore_client *c = client_new(NULL);
    CHECK(send(c, make("GET", http_url, "/bytes/1"), NULL) == 200, "get");
    char *s = NULL;
    size_t len = 0;
    CHECK(wirecore_client_diagnostics_json(c, &s, &len) == WIRECORE_OK, "diagnostics");
    CHECK(s && strlen(s) == len, "length");
    const char *keys[] = {"\"requests_total\":1", "\"error_rate\":", "\"p99_latency_ms\":",
                          "\"connection_reuse_ratio\":", "\"origins\":[{", "\"health\":"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK(s && strstr(s, keys[i]), "diagnostics lack %s: %s", keys[i], s ? s : "");
    wirecore_string_free(s);
    CHECK(wirecore_client_diagnostics_json(NULL, &s, NULL) == WIRECORE_INVALID_ARGUMENT, "NULL client");
    CHECK(wirecore_client_diagnostics_json(c, NULL, NULL) == WIRECORE_INVALID_ARGUMENT, "NULL out");
    wirecore_client_free(c);
}

/* How many spans the test server's OTLP receiver holds (each has one "spanId" key). */
static int exported_spans(wirecore_client *ctl) {
    char *body = control(ctl, "GET", "/_control/otlp", NULL);
    int n = 0;
    for (const char *p = body; p && (p = strstr(p, "\"spanId\"")); p++) n++;
    free(body);
    return n;
}

/* The stats' "otel" object, e.g. {"exported":3,"dropped":0}, is in the snapshot. */
static int otel_stats_are(wirecore_client *c, const char *want) {
    char *s = NULL;
    if (wirecore_client_stats_json(c, &s, NULL) != WIRECORE_OK) return 0;
    char pat[96];
    snprintf(pat, sizeof pat, "\"otel\":%s", want);
    int ok = strstr(s, pat) != NULL;
    if (!ok) fprintf(stderr, "request_options: stats lack %s: %s\n", pat, s);
    wirecore_string_free(s);
    return ok;
}

/* wirecore_client_flush_telemetry exports the spans of every request; close exports the last
 * ones even with no time left; spans a collector does not take count as dropped. */
static void telemetry(wirecore_client *ctl) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"otel\":{\"enabled\":true,\"endpoint\":\"%s\",\"export_interval_ms\":600000}}",
             http_url);
    reset(ctl);
    wirecore_client *c = client_new(cfg);
    for (int i = 0; i < 3; i++) CHECK(send(c, make("GET", http_url, "/bytes/10"), NULL) == 200, "get %d", i);
    CHECK(otel_stats_are(c, "{\"exported\":0,\"dropped\":0}"), "before the flush");
    CHECK(wirecore_client_flush_telemetry(c, 30000) == WIRECORE_OK, "flush");
    CHECK(exported_spans(ctl) == 3, "%d spans exported, want 3", exported_spans(ctl));
    CHECK(otel_stats_are(c, "{\"exported\":3,\"dropped\":0}"), "after the flush");
    CHECK(send(c, make("GET", http_url, "/bytes/10"), NULL) == 200, "get");
    CHECK(wirecore_client_close(c, 0) == WIRECORE_OK, "close");
    CHECK(exported_spans(ctl) == 4, "%d spans exported after close, want 4", exported_spans(ctl));
    wirecore_client_free(c);

    /* A collector that answers every export 404 (no receiver under that path). */
    snprintf(cfg, sizeof cfg,
             "{\"otel\":{\"enabled\":true,\"endpoint\":\"%s/nowhere\",\"export_interval_ms\":600000}}",
             http_url);
    c = client_new(cfg);
    for (int i = 0; i < 3; i++) CHECK(send(c, make("GET", http_url, "/status/204"), NULL) == 204, "get %d", i);
    CHECK(wirecore_client_flush_telemetry(c, 30000) == WIRECORE_OK, "flush to a refusing collector");
    CHECK(otel_stats_are(c, "{\"exported\":0,\"dropped\":3}"), "refused exports");
    wirecore_client_free(c);

    c = client_new(NULL);
    CHECK(wirecore_client_flush_telemetry(c, 0) == WIRECORE_OK, "flush without otel");
    wirecore_client_free(c);
    CHECK(wirecore_client_flush_telemetry(NULL, 0) == WIRECORE_INVALID_ARGUMENT, "flush of NULL");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: request_options SERVER_INFO_JSON\n");
        return 2;
    }
    info_field(argv[1], "http", http_url, sizeof http_url);
    info_field(argv[1], "control", control_url, sizeof control_url);
    wirecore_client *ctl = client_new(NULL);
    bad_values();
    idempotent(ctl);
    rate_limit_key(ctl);
    redirect_policy(ctl);
    sse_events(ctl);
    phase_timeouts(ctl);
    basic_auth();
    priority_header();
    priority_orders_the_queue();
    cache_mode(ctl);
    diagnostics();
    telemetry(ctl);
    wirecore_client_free(ctl);
    if (failures) {
        fprintf(stderr, "request_options: %d failure(s)\n", failures);
        return 1;
    }
    printf("request_options: ok\n");
    return 0;
}
