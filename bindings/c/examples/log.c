/* Engine log records through a C function pointer: after wirecore_log_enable, wirecore_log_poll
 * calls it on this thread with the connection a request opened and the retries it took, each
 * with its fields as JSON.
 * Usage: log SERVER_INFO_JSON (the test server's first line) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

#define EXAMPLE "log"
#include "check.h"

static char http_url[256], control_url[256];

/* The records seen, copied out (their pointers die with the call): level, then fields. */
#define MAX_SEEN 256
static char seen[MAX_SEEN][512];
static int n_seen = 0;

static void on_record(void *ud, const wirecore_log_record *r) {
    CHECK(ud == (void *)seen, "userdata passed through");
    CHECK(strncmp(r->target, "wirecore", 8) == 0, "target %s", r->target);
    CHECK(r->message[0] != 0 && r->time_ms > 1700000000000ULL, "message and time");
    if (n_seen == MAX_SEEN) return;
    snprintf(seen[n_seen++], sizeof seen[0], "%s %s", r->level, r->fields_json);
}

/* Whether a record has every one of the NULL-terminated substrings. */
static int has(const char *first, ...) {
    for (int i = 0; i < n_seen; i++) {
        int all = strstr(seen[i], first) != NULL;
        va_list ap;
        va_start(ap, first);
        for (const char *s = va_arg(ap, const char *); s && all; s = va_arg(ap, const char *)) {
            all = strstr(seen[i], s) != NULL;
        }
        va_end(ap);
        if (all) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: log SERVER_INFO_JSON\n");
        return 2;
    }
    info_field(argv[1], "http", http_url, sizeof http_url);
    info_field(argv[1], "control", control_url, sizeof control_url);
    size_t n = 0;
    CHECK(wirecore_log_enable("loud", NULL) == WIRECORE_INVALID_ARGUMENT, "an unknown level");
    CHECK(wirecore_log_enable(NULL, NULL) == WIRECORE_INVALID_ARGUMENT, "a NULL level");
    CHECK(wirecore_log_poll(0, NULL, NULL, &n) == WIRECORE_INVALID_ARGUMENT, "a NULL callback");
    CHECK(wirecore_log_enable("debug", NULL) == WIRECORE_OK, "enable");

    wirecore_client *c = NULL;
    const char *cfg = "{\"retry\":{\"max_attempts\":3,\"backoff_base_ms\":1,\"backoff_max_ms\":5}}";
    if (wirecore_client_new(cfg, &c, NULL) != WIRECORE_OK) return 1;
    char url[512];
    snprintf(url, sizeof url, "%s/_control/script", control_url);
    wirecore_request *req = request_or_exit("POST", url);
    const char *script = "{\"path\":\"/s/c-log\",\"replies\":[{\"status\":503},{\"status\":200}]}";
    wirecore_request_set_body(req, (const uint8_t *)script, strlen(script), NULL);
    CHECK(send_status(c, req) == 200, "script");
    snprintf(url, sizeof url, "%s/s/c-log", http_url);
    CHECK(send_status(c, request_or_exit("GET", url)) == 200, "fixed by a retry");
    /* Refused: nothing listens on port 9 of loopback here. */
    CHECK(send_status(c, request_or_exit("GET", "http://127.0.0.1:9/")) == -(int)WIRECORE_CONNECT, "refused");

    char origin[300];
    snprintf(origin, sizeof origin, "\"origin\":\"%s\"", http_url);
    for (int i = 0; i < 100 && !has("\"attempt\":2", "\"origin\":\"http://127.0.0.1:9\"", NULL); i++) {
        CHECK(wirecore_log_poll(100, on_record, seen, &n) == WIRECORE_OK, "poll");
    }
    CHECK(has("debug ", "\"event\":\"connection_opened\"", origin, "\"protocol\":\"h1\"", NULL),
          "connection_opened for %s", http_url);
    CHECK(has("\"event\":\"retry\"", origin, "\"attempt\":1", "\"error_code\":\"status\"",
              "\"status\":503", NULL),
          "the retry after a 503");
    for (int a = 1; a <= 2; a++) {
        char attempt[32];
        snprintf(attempt, sizeof attempt, "\"attempt\":%d", a);
        CHECK(has("\"event\":\"retry\"", "\"origin\":\"http://127.0.0.1:9\"", attempt,
                  "\"error_code\":\"connect\"", "\"reason\":\"unsent\"", NULL),
              "retry %d of the refused connect", a);
    }

    /* Off again: nothing more is queued. */
    CHECK(wirecore_log_enable("off", NULL) == WIRECORE_OK, "off");
    while (wirecore_log_poll(0, on_record, seen, &n) == WIRECORE_OK && n > 0) {
    }
    snprintf(url, sizeof url, "%s/bytes/1", http_url);
    wirecore_client_close_idle(c);
    CHECK(send_status(c, request_or_exit("GET", url)) == 200, "a request while off");
    CHECK(wirecore_log_poll(50, on_record, seen, &n) == WIRECORE_OK && n == 0, "no records while off");
    wirecore_client_close(c, 1000);
    wirecore_client_free(c);
    if (failures) {
        for (int i = 0; i < n_seen; i++) fprintf(stderr, "  %s\n", seen[i]);
        return 1;
    }
    printf("log: ok\n");
    return 0;
}
