/* Dead letters through a C function pointer: wirecore_client_poll_dead_letters calls it on this
 * thread with exactly the requests that failed after every retry (not the ones a retry fixed).
 * Usage: dead_letter SERVER_INFO_JSON (the test server's first line) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wirecore.h"

#define EXAMPLE "dead_letter"
#include "check.h"

static char http_url[256], control_url[256];

/* What the callback saw, copied out of the letters (their pointers die with the call). */
#define MAX_SEEN 8
static struct {
    char url[256], code[32], method[16];
    unsigned status, attempts;
    size_t body_len;
    int has_auth;
} seen[MAX_SEEN];
static int n_seen = 0;

static void on_letter(void *ud, const wirecore_dead_letter *l) {
    CHECK(ud == (void *)&seen, "userdata passed through");
    if (n_seen == MAX_SEEN) return;
    snprintf(seen[n_seen].url, sizeof seen[n_seen].url, "%s", l->url);
    snprintf(seen[n_seen].code, sizeof seen[n_seen].code, "%s", l->error_code);
    snprintf(seen[n_seen].method, sizeof seen[n_seen].method, "%s", l->method);
    seen[n_seen].status = l->status;
    seen[n_seen].attempts = l->attempts;
    seen[n_seen].body_len = l->body_len;
    seen[n_seen].has_auth = strstr(l->headers_json, "authorization") != NULL;
    CHECK(l->time_ms > 1700000000000ULL, "time_ms %llu", (unsigned long long)l->time_ms);
    n_seen++;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: dead_letter SERVER_INFO_JSON\n");
        return 2;
    }
    info_field(argv[1], "http", http_url, sizeof http_url);
    info_field(argv[1], "control", control_url, sizeof control_url);
    wirecore_client *c = NULL;
    const char *cfg = "{\"retry\":{\"max_attempts\":3,\"backoff_base_ms\":1,\"backoff_max_ms\":5}}";
    if (wirecore_client_new(cfg, &c, NULL) != WIRECORE_OK) return 1;
    size_t n = 0;
    CHECK(wirecore_client_poll_dead_letters(c, 0, on_letter, &seen, &n) == WIRECORE_INVALID_ARGUMENT,
          "polling before listening is refused");
    CHECK(wirecore_client_listen_dead_letters(c) == WIRECORE_OK, "listen");
    CHECK(wirecore_client_listen_dead_letters(c) == WIRECORE_OK, "listen twice");

    char url[512];
    /* Fixed by a retry: no letter. */
    snprintf(url, sizeof url, "%s/_control/script", control_url);
    wirecore_request *req = request_or_exit("POST", url);
    const char *script = "{\"path\":\"/s/flaky\",\"replies\":[{\"status\":503},{\"status\":200}]}";
    wirecore_request_set_body(req, (const uint8_t *)script, strlen(script), NULL);
    CHECK(send_status(c, req) == 200, "script");
    snprintf(url, sizeof url, "%s/s/flaky", http_url);
    CHECK(send_status(c, request_or_exit("GET", url)) == 200, "flaky GET fixed by a retry");
    /* Failed after 3 attempts. */
    snprintf(url, sizeof url, "%s/status/503", http_url);
    CHECK(send_status(c, request_or_exit("GET", url)) == 503, "503");
    /* An answer, not a failure. */
    snprintf(url, sizeof url, "%s/status/404", http_url);
    CHECK(send_status(c, request_or_exit("GET", url)) == 404, "404");
    /* Refused: nothing listens on port 9 of loopback here. */
    req = request_or_exit("POST", "http://127.0.0.1:9/x");
    wirecore_request_set_body(req, (const uint8_t *)"payload", 7, NULL);
    wirecore_request_add_header(req, "authorization", 13, "Bearer s", 8, NULL);
    CHECK(send_status(c, req) == -(int)WIRECORE_CONNECT, "refused");

    /* Letters arrive in order: poll (bounded) until both are in. */
    for (int i = 0; i < 100 && n_seen < 2; i++) {
        CHECK(wirecore_client_poll_dead_letters(c, 100, on_letter, &seen, &n) == WIRECORE_OK, "poll");
    }
    CHECK(n_seen == 2, "two letters, got %d", n_seen);
    if (n_seen >= 2) {
        snprintf(url, sizeof url, "%s/status/503", http_url);
        CHECK(strcmp(seen[0].url, url) == 0, "first %s", seen[0].url);
        CHECK(strcmp(seen[0].code, "status") == 0 && seen[0].status == 503, "503 letter");
        CHECK(seen[0].attempts == 3, "503 attempts %u", seen[0].attempts);
        CHECK(strcmp(seen[1].url, "http://127.0.0.1:9/x") == 0, "second %s", seen[1].url);
        CHECK(strcmp(seen[1].code, "connect") == 0 && seen[1].status == 0, "connect letter");
        CHECK(strcmp(seen[1].method, "POST") == 0 && seen[1].body_len == 7, "POST with its body");
        CHECK(!seen[1].has_auth, "credentials are left out");
    }
    /* Nothing else comes. */
    CHECK(wirecore_client_poll_dead_letters(c, 50, on_letter, &seen, &n) == WIRECORE_OK && n == 0,
          "no third letter");
    wirecore_client_close(c, 1000);
    CHECK(wirecore_client_poll_dead_letters(c, 1000, on_letter, &seen, &n) == WIRECORE_CLOSED,
          "closed once the client is");
    wirecore_client_free(c);
    if (failures) return 1;
    printf("dead_letter: ok\n");
    return 0;
}
