/* Concurrent requests without a thread per request: submit to a completion queue and drain it
 * in batches; submit with a callback; cancel an in-flight request; stream a request body in
 * and a response body out.
 * Usage: concurrent BASE_URL */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

#define N 64

static int failures = 0;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            fprintf(stderr, "concurrent: " __VA_ARGS__);  \
            fprintf(stderr, " (line %d)\n", __LINE__);    \
            failures++;                                   \
        }                                                 \
    } while (0)

static wirecore_request *make(const char *method, const char *base, const char *path) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    wirecore_request *req = NULL;
    wirecore_error *err = NULL;
    if (wirecore_request_new(method, strlen(method), url, strlen(url), &req, &err) != WIRECORE_OK) {
        fprintf(stderr, "concurrent: request %s: %s\n", url, wirecore_error_message(err));
        wirecore_error_free(err);
        exit(1);
    }
    return req;
}

/* Waits for exactly `want` completions; frees what they own; returns how many were OK/200. */
static int drain(wirecore_queue *q, int want, wirecore_code expect) {
    wirecore_completion batch[16];
    int got = 0, ok = 0;
    while (got < want) {
        intptr_t n = wirecore_queue_wait(q, batch, 16, 10000);
        if (n <= 0) {
            CHECK(0, "queue_wait returned %ld after %d of %d", (long)n, got, want);
            return ok;
        }
        for (intptr_t i = 0; i < n; i++) {
            wirecore_completion *c = &batch[i];
            if (c->code == expect) ok++;
            else
                fprintf(stderr, "concurrent: completion %p: %s (%s)\n", c->userdata,
                        wirecore_code_str(c->code),
                        c->error ? wirecore_error_message(c->error) : "");
            if (c->response && wirecore_response_status(c->response) != 200) ok--;
            wirecore_response_free(c->response);
            wirecore_error_free(c->error);
        }
        got += (int)n;
    }
    return ok;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    wirecore_code code;
    unsigned status;
};

/* Runs on an engine thread: record, free, signal; never block here. */
static void on_done(void *userdata, wirecore_code code, wirecore_response *resp,
                    wirecore_error *err) {
    struct waiter *w = userdata;
    pthread_mutex_lock(&w->mu);
    w->code = code;
    w->status = resp ? wirecore_response_status(resp) : 0;
    w->done++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    wirecore_response_free(resp);
    wirecore_error_free(err);
}

/* The notify fd gets no byte for a completion that a thread blocked in wirecore_queue_wait
 * takes (that thread is woken instead), and one for a completion nobody waits for. */
static void a_blocked_waiter_takes_without_a_byte(wirecore_client *client, const char *base) {
    wirecore_queue *q = wirecore_queue_new();
    wirecore_error *err = NULL;
    int fd = wirecore_queue_notify_fd(q);
    CHECK(fd >= 0, "notify_fd");
    wirecore_completion c;
    CHECK(wirecore_queue_try_take(q, &c, 1) == 0, "an empty queue arms the fd");
    /* Blocked long before the response (500 ms away) comes. */
    CHECK(wirecore_client_submit_queue(client, make("GET", base, "/delay/500"), q, (void *)1, NULL,
                                       &err) == WIRECORE_OK,
          "submit delay");
    CHECK(wirecore_queue_wait(q, &c, 1, 30000) == 1 && c.code == WIRECORE_OK, "waited completion");
    wirecore_response_free(c.response);
    wirecore_error_free(c.error);
    struct pollfd p = {fd, POLLIN, 0};
    /* The engine thread would write the byte after waking this one: give it 100 ms. */
    CHECK(poll(&p, 1, 100) == 0, "a byte was written for a completion a blocked waiter took");
    /* Still armed: the next completion, with no waiter, writes the byte. */
    CHECK(wirecore_client_submit_queue(client, make("GET", base, "/json"), q, (void *)2, NULL, &err) ==
              WIRECORE_OK,
          "submit json");
    CHECK(poll(&p, 1, 30000) == 1, "no byte for a completion nobody waited for");
    CHECK(wirecore_queue_try_take(q, &c, 1) == 1 && c.code == WIRECORE_OK,
          "the byte came before its completion (a byte left from the waited one?)");
    wirecore_response_free(c.response);
    wirecore_error_free(c.error);
    wirecore_queue_free(q);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    wirecore_client *client = NULL;
    wirecore_error *err = NULL;
    if (wirecore_client_new(NULL, &client, &err) != WIRECORE_OK) {
        fprintf(stderr, "concurrent: client: %s\n", wirecore_error_message(err));
        return 1;
    }
    wirecore_queue *q = wirecore_queue_new();

    /* 1. N requests in flight at once, drained in batches. */
    for (intptr_t i = 0; i < N; i++) {
        wirecore_request *req = make("GET", base, "/bytes/1024");
        CHECK(wirecore_client_submit_queue(client, req, q, (void *)i, NULL, &err) == WIRECORE_OK,
              "submit_queue");
    }
    int ok = drain(q, N, WIRECORE_OK);
    printf("queue: %d/%d requests OK\n", ok, N);
    CHECK(ok == N, "only %d of %d OK", ok, N);

    /* 2. A callback on an engine thread. */
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, WIRECORE_OK, 0};
    CHECK(wirecore_client_submit(client, make("GET", base, "/json"), on_done, &w, NULL, &err) ==
              WIRECORE_OK,
          "submit");
    pthread_mutex_lock(&w.mu);
    while (w.done == 0) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    printf("callback: %s, status %u\n", wirecore_code_str(w.code), w.status);
    CHECK(w.code == WIRECORE_OK && w.status == 200, "callback outcome");

    /* 3. Cancel a request that would never finish. */
    wirecore_task *task = NULL;
    CHECK(wirecore_client_submit_queue(client, make("GET", base, "/hang"), q, (void *)1, &task,
                                       &err) == WIRECORE_OK,
          "submit hang");
    wirecore_completion c;
    CHECK(wirecore_queue_wait(q, &c, 1, 100) == 0, "hang completed early");
    CHECK(wirecore_task_cancel(task) == WIRECORE_OK, "cancel");
    ok = drain(q, 1, WIRECORE_CANCELLED);
    printf("cancel: %s\n", ok == 1 ? "cancelled" : "NOT cancelled");
    CHECK(ok == 1, "cancel outcome");
    CHECK(wirecore_task_cancel(task) == WIRECORE_OK, "cancel after completion is harmless");
    wirecore_task_free(task);

    /* 4. Stream a request body in (blocking writes from this thread). */
    wirecore_request *up = make("POST", base, "/upload");
    wirecore_body_writer *bw = NULL;
    CHECK(wirecore_request_body_stream(up, &bw) == WIRECORE_OK, "body_stream");
    CHECK(wirecore_client_submit_queue(client, up, q, (void *)2, NULL, &err) == WIRECORE_OK,
          "submit upload");
    static uint8_t chunk[16384];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 64; i++)
        CHECK(wirecore_body_writer_write(bw, chunk, sizeof chunk, &err) == WIRECORE_OK, "write");
    wirecore_body_writer_close(bw, false);
    wirecore_completion up_done;
    CHECK(wirecore_queue_wait(q, &up_done, 1, 10000) == 1, "upload completion");
    CHECK(up_done.code == WIRECORE_OK, "upload: %s", wirecore_code_str(up_done.code));
    if (up_done.response) {
        const uint8_t *body;
        size_t len;
        CHECK(wirecore_response_body(up_done.response, &body, &len, &err) == WIRECORE_OK, "body");
        printf("upload: %.*s\n", (int)len, (const char *)body);
        CHECK(len > 0 && strstr((const char *)body, "\"body_len\":1048576") != NULL,
              "upload length");
        wirecore_response_free(up_done.response);
    }
    wirecore_error_free(up_done.error);

    /* 5. Stream a response body out through the queue (no blocking read). */
    CHECK(wirecore_client_submit_queue(client, make("GET", base, "/stream?chunks=20&size=4096"), q,
                                       (void *)3, NULL, &err) == WIRECORE_OK,
          "submit stream");
    wirecore_completion sd;
    CHECK(wirecore_queue_wait(q, &sd, 1, 10000) == 1 && sd.code == WIRECORE_OK, "stream head");
    size_t total = 0;
    int reads = 0;
    if (sd.response) {
        uint8_t buf[8192];
        for (int guard = 0; guard < 10000; guard++) {
            size_t n = 0;
            bool eof = false;
            if (wirecore_response_read_nowait(sd.response, buf, sizeof buf, &n, &eof, &err) !=
                WIRECORE_OK) {
                CHECK(0, "read_nowait: %s", wirecore_error_message(err));
                wirecore_error_free(err);
                break;
            }
            total += n;
            if (eof) break;
            if (n == 0) {
                CHECK(wirecore_response_read_queue(sd.response, q, (void *)4, &err) == WIRECORE_OK,
                      "read_queue");
                wirecore_completion rc;
                CHECK(wirecore_queue_wait(q, &rc, 1, 10000) == 1 && rc.code == WIRECORE_OK,
                      "read completion");
                wirecore_error_free(rc.error);
                reads++;
            }
        }
        wirecore_response_free(sd.response);
    }
    wirecore_error_free(sd.error);
    printf("stream: %zu bytes in %d queued reads\n", total, reads);
    CHECK(total == 20 * 4096, "stream length %zu", total);

    /* 6. A blocked waiter is woken without the notify fd. */
    a_blocked_waiter_takes_without_a_byte(client, base);

    /* 7. A request left in the queue when it is freed is freed by wirecore. */
    CHECK(wirecore_client_submit_queue(client, make("GET", base, "/json"), q, NULL, NULL, &err) ==
              WIRECORE_OK,
          "submit last");
    wirecore_client_close(client, 5000);
    wirecore_queue_close(q);
    wirecore_queue_free(q);
    wirecore_client_free(client);
    if (failures) fprintf(stderr, "concurrent: %d failures\n", failures);
    return failures ? 1 : 0;
}
