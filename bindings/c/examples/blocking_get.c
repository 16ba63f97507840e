/* A blocking GET: build a client, send, read status, headers, body and timings, print stats.
 * Usage: blocking_get BASE_URL   (e.g. http://127.0.0.1:8080) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wirecore.h"

static int fail(const char *what, wirecore_error *err) {
    fprintf(stderr, "blocking_get: %s: [%s] %s\n", what, wirecore_error_code(err),
            wirecore_error_message(err));
    wirecore_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    if (wirecore_abi_version() != WIRECORE_ABI_VERSION) {
        fprintf(stderr, "blocking_get: header and library ABI differ\n");
        return 1;
    }
    wirecore_error *err = NULL;
    wirecore_client *client = NULL;
    if (wirecore_client_new("{\"pool\":{\"max_idle_per_host\":4}}", &client, &err) != WIRECORE_OK)
        return fail("client", err);

    char url[512];
    snprintf(url, sizeof url, "%s/bytes/1024", argv[1]);
    int failures = 0;
    for (int round = 0; round < 3; round++) {
        wirecore_request *req = NULL;
        if (wirecore_request_new("GET", 3, url, strlen(url), &req, &err) != WIRECORE_OK)
            return fail("request", err);
        if (wirecore_request_add_header(req, "x-example", 9, "blocking", 8, &err) != WIRECORE_OK)
            return fail("header", err);
        wirecore_response *resp = NULL;
        if (wirecore_client_send(client, req, &resp, &err) != WIRECORE_OK)
            return fail("send", err);

        /* A small body arrives with the head: all of it is buffered, and nothing follows. */
        size_t buffered = 0;
        bool complete = false;
        if (wirecore_response_buffered(resp, &buffered, &complete) != WIRECORE_OK || buffered != 1024 ||
            !complete) {
            fprintf(stderr, "blocking_get: buffered %zu bytes, complete %d\n", buffered, complete);
            failures++;
        }
        const uint8_t *body = NULL;
        size_t len = 0;
        if (wirecore_response_body(resp, &body, &len, &err) != WIRECORE_OK)
            return fail("body", err);
        for (size_t i = 0; i < len; i++)
            if (body[i] != (uint8_t)(i % 251)) {
                fprintf(stderr, "blocking_get: byte %zu is wrong\n", i);
                failures++;
                break;
            }
        /* A second call returns the same bytes, still owned by the response. */
        const uint8_t *again = NULL;
        size_t again_len = 0;
        if (wirecore_response_body(resp, &again, &again_len, &err) != WIRECORE_OK)
            return fail("body, second call", err);
        if (again_len != len || memcmp(again, body, len) != 0) {
            fprintf(stderr, "blocking_get: the second body call gave %zu bytes, the first %zu\n",
                    again_len, len);
            failures++;
        }
        wirecore_timings t;
        wirecore_response_timings(resp, &t);
        const char *ct = NULL;
        size_t ct_len = 0;
        bool has_ct = wirecore_response_header_get(resp, "Content-Type", 12, &ct, &ct_len);
        printf("GET %s -> %u HTTP/%d.%d, %zu bytes, reused=%d, total=%lluus, %zu headers%s%.*s\n",
               url, wirecore_response_status(resp), wirecore_response_version(resp) / 10,
               wirecore_response_version(resp) % 10, len, wirecore_response_reused(resp),
               (unsigned long long)t.total_us, wirecore_response_header_count(resp),
               has_ct ? ", content-type " : "", (int)ct_len, has_ct ? ct : "");
        if (wirecore_response_status(resp) != 200 || len != 1024) failures++;
        if (round > 0 && !wirecore_response_reused(resp)) {
            fprintf(stderr, "blocking_get: connection not reused\n");
            failures++;
        }
        for (size_t i = 0; i < wirecore_response_header_count(resp); i++) {
            const char *n, *v;
            size_t nl, vl;
            if (wirecore_response_header_at(resp, i, &n, &nl, &v, &vl) != WIRECORE_OK) failures++;
        }
        wirecore_response_free(resp);
    }

    /* A streamed body (no Content-Length) read whole twice: the same bytes both times. */
    {
        char surl[512];
        snprintf(surl, sizeof surl, "%s/stream?chunks=5&size=1000", argv[1]);
        wirecore_request *req = NULL;
        if (wirecore_request_new("GET", 3, surl, strlen(surl), &req, &err) != WIRECORE_OK)
            return fail("request", err);
        wirecore_response *resp = NULL;
        if (wirecore_client_send(client, req, &resp, &err) != WIRECORE_OK) return fail("send", err);
        const uint8_t *first = NULL, *second = NULL;
        size_t first_len = 0, second_len = 0;
        if (wirecore_response_body(resp, &first, &first_len, &err) != WIRECORE_OK ||
            wirecore_response_body(resp, &second, &second_len, &err) != WIRECORE_OK)
            return fail("streamed body", err);
        printf("GET %s -> body of %zu bytes, then %zu bytes again\n", surl, first_len, second_len);
        if (first_len != 5000 || second_len != first_len || memcmp(first, second, first_len) != 0) {
            fprintf(stderr, "blocking_get: streamed body %zu then %zu bytes\n", first_len, second_len);
            failures++;
        }
        wirecore_response_free(resp);
    }

    /* Closing idle connections: the next request opens a new one. */
    if (wirecore_client_close_idle(client) != WIRECORE_OK) failures++;
    {
        wirecore_request *req = NULL;
        if (wirecore_request_new("GET", 3, url, strlen(url), &req, &err) != WIRECORE_OK)
            return fail("request", err);
        wirecore_response *resp = NULL;
        if (wirecore_client_send(client, req, &resp, &err) != WIRECORE_OK) return fail("send", err);
        printf("GET %s after close_idle -> %u, reused=%d\n", url, wirecore_response_status(resp),
               wirecore_response_reused(resp));
        if (wirecore_response_status(resp) != 200 || wirecore_response_reused(resp)) {
            fprintf(stderr, "blocking_get: the request after close_idle reused a connection\n");
            failures++;
        }
        wirecore_response_free(resp);
    }

    /* A failure: an error code and a message, never a crash. */
    wirecore_request *bad = NULL;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/status/404", argv[1]);
    if (wirecore_request_new("GET", 3, missing, strlen(missing), &bad, &err) != WIRECORE_OK)
        return fail("request", err);
    wirecore_response *resp = NULL;
    if (wirecore_client_send(client, bad, &resp, &err) != WIRECORE_OK) return fail("send", err);
    printf("GET %s -> %u (a status is not an error)\n", missing, wirecore_response_status(resp));
    if (wirecore_response_status(resp) != 404) failures++;
    wirecore_response_free(resp);

    char *stats = NULL;
    size_t stats_len = 0;
    if (wirecore_client_stats_json(client, &stats, &stats_len) != WIRECORE_OK) failures++;
    printf("stats: %s\n", stats);
    if (strstr(stats, "\"requests_total\":6") == NULL) {
        fprintf(stderr, "blocking_get: expected requests_total 6\n");
        failures++;
    }
    wirecore_string_free(stats);
    char *prom = NULL;
    if (wirecore_client_prometheus(client, &prom, NULL) != WIRECORE_OK) failures++;
    if (strstr(prom, "wirecore_") == NULL) failures++;
    wirecore_string_free(prom);

    /* A forked child cannot use the parent's engine threads: it gets its own runtime (the
     * library notices the fork) and a client made in the child works. */
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        alarm(60); /* a child stuck on the parent's dead runtime fails instead of hanging */
        wirecore_client *c2 = NULL;
        wirecore_request *req = NULL;
        wirecore_response *r2 = NULL;
        if (wirecore_client_new(NULL, &c2, &err) != WIRECORE_OK) _exit(fail("child client", err));
        if (wirecore_request_new("GET", 3, url, strlen(url), &req, &err) != WIRECORE_OK)
            _exit(fail("child request", err));
        if (wirecore_client_send(c2, req, &r2, &err) != WIRECORE_OK) _exit(fail("child send", err));
        int bad = wirecore_response_status(r2) != 200;
        printf("forked child: GET %s -> %u\n", url, wirecore_response_status(r2));
        fflush(NULL);
        wirecore_response_free(r2);
        wirecore_client_free(c2);
        _exit(bad);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "blocking_get: the forked child failed (status %d)\n", status);
        failures++;
    }

    wirecore_client_close(client, 1000);
    wirecore_client_free(client);
    if (failures) fprintf(stderr, "blocking_get: %d failures\n", failures);
    return failures ? 1 : 0;
}
