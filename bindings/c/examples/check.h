/* What the test examples share (the ones `make test-c` runs against the test server): a CHECK
 * that counts failures and names the example and line, a reader of the test server's info
 * line, and a request builder and sender for examples that only need the status. Include
 * wirecore.h and define EXAMPLE ("name") before including it. */
#ifndef WIRECORE_EXAMPLES_CHECK_H
#define WIRECORE_EXAMPLES_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, EXAMPLE ": " __VA_ARGS__);     \
            fprintf(stderr, " (line %d)\n", __LINE__);     \
            failures++;                                    \
        }                                                  \
    } while (0)

/* The value of "KEY":"..." in the server's info line (its first line of output); exits when
 * it is missing or longer than `cap`. */
static inline void info_field(const char *info, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(info, pat);
    if (!p) {
        fprintf(stderr, EXAMPLE ": no %s in %s\n", key, info);
        exit(1);
    }
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= cap) exit(1);
    memcpy(out, p, n);
    out[n] = 0;
}

/* A request (no body), or exit naming the URL. */
static inline wirecore_request *request_or_exit(const char *method, const char *url) {
    wirecore_request *req = NULL;
    if (wirecore_request_new(method, strlen(method), url, strlen(url), &req, NULL) != WIRECORE_OK) {
        fprintf(stderr, EXAMPLE ": bad request %s\n", url);
        exit(1);
    }
    return req;
}

/* Sends (consuming `req`); returns the status, or the negated wirecore_code. */
static inline int send_status(wirecore_client *c, wirecore_request *req) {
    wirecore_response *resp = NULL;
    wirecore_code rc = wirecore_client_send(c, req, &resp, NULL);
    if (rc != WIRECORE_OK) return -(int)rc;
    int status = wirecore_response_status(resp);
    wirecore_response_free(resp);
    return status;
}

#endif
