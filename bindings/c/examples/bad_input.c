/* Misuse of the ABI gets a status and an error, never a crash: NULL pointers, invalid UTF-8,
 * bad config, bad URL/header/method, handles of the wrong type, double free of a handle.
 * Usage: bad_input BASE_URL */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

static int failures = 0;

static void expect(const char *what, wirecore_code got, wirecore_code want, wirecore_error *err) {
    const char *code = err ? wirecore_error_code(err) : wirecore_code_str(got);
    if (got != want) {
        fprintf(stderr, "bad_input: %s: got %s, want %s\n", what, wirecore_code_str(got),
                wirecore_code_str(want));
        failures++;
    } else if (err && strcmp(code, wirecore_code_str(want)) != 0) {
        fprintf(stderr, "bad_input: %s: error code %s\n", what, code);
        failures++;
    } else {
        printf("%-28s -> %-16s %s\n", what, code, err ? wirecore_error_message(err) : "");
    }
    wirecore_error_free(err);
}

/* Runs CALL (which may use `&err`), then checks its status and error. */
#define EXPECT(what, call, want)                 \
    do {                                         \
        wirecore_error *err = NULL;              \
        wirecore_code got_ = (call);             \
        expect((what), got_, (want), err);       \
    } while (0)

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "http://127.0.0.1:1";
    wirecore_error *err = NULL;
    wirecore_client *client = NULL;

    EXPECT("config: unknown field", wirecore_client_new("{\"pool\":{\"nope\":1}}", &client, &err), WIRECORE_INVALID_CONFIG);
    EXPECT("config: not JSON", wirecore_client_new("{", &client, &err), WIRECORE_INVALID_CONFIG);
    EXPECT("config: invalid UTF-8", wirecore_client_new("{\"user_agent\":\"\xff\"}", &client, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("client_new: out NULL", wirecore_client_new(NULL, NULL, &err), WIRECORE_INVALID_ARGUMENT);
    if (wirecore_client_new(NULL, &client, &err) != WIRECORE_OK) return 1;

    wirecore_request *req = NULL;
    EXPECT("url: no scheme", wirecore_request_new("GET", 3, "example.com/x", 13, &req, &err), WIRECORE_INVALID_URL);
    EXPECT("url: ftp", wirecore_request_new("GET", 3, "ftp://x/", 8, &req, &err), WIRECORE_INVALID_URL);
    EXPECT("url: NULL", wirecore_request_new("GET", 3, NULL, 4, &req, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("url: invalid UTF-8", wirecore_request_new("GET", 3, "http://\xc3\x28/", 10, &req, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("method: space", wirecore_request_new("G T", 3, "http://a/", 9, &req, &err), WIRECORE_INVALID_REQUEST);

    char url[512];
    snprintf(url, sizeof url, "%s/json", base);
    if (wirecore_request_new("GET", 3, url, strlen(url), &req, &err) != WIRECORE_OK) return 1;
    EXPECT("header: bad name", wirecore_request_add_header(req, "a b", 3, "v", 1, &err), WIRECORE_INVALID_HEADER);
    EXPECT("header: CRLF in value", wirecore_request_add_header(req, "x", 1, "a\r\nb", 4, &err), WIRECORE_INVALID_HEADER);
    EXPECT("header: NULL request", wirecore_request_add_header(NULL, "x", 1, "v", 1, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("body: NULL data", wirecore_request_set_body(req, NULL, 5, &err), WIRECORE_INVALID_ARGUMENT);
    /* Wrong handle types are caught by their tag. */
    EXPECT("send: request as client",
           wirecore_client_send((const wirecore_client *)req, NULL, NULL, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("close_idle: request as client", wirecore_client_close_idle((const wirecore_client *)req),
           WIRECORE_INVALID_ARGUMENT);
    if (wirecore_response_status((const wirecore_response *)client) != 0) {
        fprintf(stderr, "bad_input: a client read as a response\n");
        failures++;
    }
    EXPECT("send: NULL out", wirecore_client_send(client, req, NULL, &err), WIRECORE_INVALID_ARGUMENT); /* consumes req */
    EXPECT("send: NULL request", wirecore_client_send(client, NULL, NULL, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("submit: no callback", wirecore_client_submit(client, NULL, NULL, NULL, NULL, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("read: NULL response", wirecore_response_read(NULL, NULL, 0, NULL, &err), WIRECORE_INVALID_ARGUMENT);
    EXPECT("stats: NULL out", wirecore_client_stats_json(client, NULL, NULL), WIRECORE_INVALID_ARGUMENT);
    EXPECT("task_cancel: NULL", wirecore_task_cancel(NULL), WIRECORE_INVALID_ARGUMENT);
    EXPECT("close_idle: NULL", wirecore_client_close_idle(NULL), WIRECORE_INVALID_ARGUMENT);
    EXPECT("buffered: NULL", wirecore_response_buffered(NULL, NULL, NULL), WIRECORE_INVALID_ARGUMENT);
    if (wirecore_queue_wait(NULL, NULL, 0, 0) != -2) {
        fprintf(stderr, "bad_input: queue_wait(NULL) did not return -2\n");
        failures++;
    }
    /* A failure reaching the network: connection refused on a closed port. */
    if (wirecore_request_new("GET", 3, "http://127.0.0.1:1/", 19, &req, &err) != WIRECORE_OK)
        return 1;
    wirecore_response *resp = NULL;
    EXPECT("connect: refused", wirecore_client_send(client, req, &resp, &err), WIRECORE_CONNECT);

    /* Code strings round-trip, and every core code is known. */
    const char *codes = wirecore_error_codes();
    int n = 0;
    for (const char *p = codes; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char one[64];
        snprintf(one, sizeof one, "%.*s", (int)len, p);
        wirecore_code c = wirecore_code_from_str(one);
        if (strcmp(wirecore_code_str(c), one) != 0) {
            fprintf(stderr, "bad_input: code %s does not round-trip\n", one);
            failures++;
        }
        n++;
        p += len + (end ? 1 : 0);
    }
    printf("%d core error codes round-trip\n", n);
    if (strcmp(wirecore_code_str(12345), "internal") != 0) failures++;
    if (wirecore_code_from_str(NULL) != WIRECORE_INTERNAL) failures++;

    wirecore_error_free(NULL);
    wirecore_response_free(NULL);
    wirecore_request_free(NULL);
    wirecore_string_free(NULL);
    wirecore_client_free(client);
    if (failures) fprintf(stderr, "bad_input: %d failures\n", failures);
    return failures ? 1 : 0;
}
