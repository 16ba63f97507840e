/* Soak worker for C (bench/soak/soak.py builds and starts it).
 * argv: SECONDS (BASE_URL CONFIG_JSON)...: until SECONDS pass, build a client from the next pair,
 * send 40 mixed requests from 4 threads through it (the blocking API), free it. Prints
 * "err START_MS END_MS CODE" per failed request and "tick NOW_MS OK ERR 0" after each client. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wirecore.h"

static const char *paths[] = {"/bytes/1024", "/bytes/65536", "/echo", "/json"};
static uint8_t body[4096];
static atomic_long ok, bad;
static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct job {
    wirecore_client *client;
    const char *base;
    int first;
};

static void one(wirecore_client *client, const char *base, int i) {
    const char *path = paths[i % 4];
    const char *method = strcmp(path, "/echo") ? "GET" : "POST";
    char url[512], code[64] = "";
    snprintf(url, sizeof url, "%s%s", base, path);
    long long start = now_ms();
    wirecore_error *err = NULL;
    wirecore_request *req = NULL;
    wirecore_response *resp = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    int sent = 0;
    if (wirecore_request_new(method, strlen(method), url, strlen(url), &req, &err) != WIRECORE_OK ||
        (!strcmp(method, "POST") &&
         wirecore_request_set_body(req, body, sizeof body, &err) != WIRECORE_OK) ||
        (sent = 1, wirecore_client_send(client, req, &resp, &err) != WIRECORE_OK) ||
        wirecore_response_body(resp, &data, &len, &err) != WIRECORE_OK) {
        snprintf(code, sizeof code, "%s", wirecore_error_code(err));
        wirecore_error_free(err);
        if (!sent) wirecore_request_free(req); /* send consumes it, even when it fails */
    } else if (wirecore_response_status(resp) != 200) {
        snprintf(code, sizeof code, "status_%u", (unsigned)wirecore_response_status(resp));
    }
    wirecore_response_free(resp);
    if (!code[0]) {
        atomic_fetch_add(&ok, 1);
        return;
    }
    atomic_fetch_add(&bad, 1);
    pthread_mutex_lock(&out);
    printf("err %lld %lld %s\n", start, now_ms(), code);
    fflush(stdout);
    pthread_mutex_unlock(&out);
}

static void *run(void *arg) {
    struct job *j = arg;
    for (int i = j->first; i < j->first + 10; i++) {
        one(j->client, j->base, i);
        nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc % 2) {
        fputs("usage: soak_worker SECONDS (BASE_URL CONFIG_JSON)...\n", stderr);
        return 2;
    }
    memset(body, 'x', sizeof body);
    long long deadline = now_ms() + (long long)(atof(argv[1]) * 1000);
    int kinds = (argc - 2) / 2;
    for (int n = 0; now_ms() < deadline; n++) {
        const char *base = argv[2 + 2 * (n % kinds)], *config = argv[3 + 2 * (n % kinds)];
        wirecore_client *client = NULL;
        wirecore_error *err = NULL;
        if (wirecore_client_new(config, &client, &err) != WIRECORE_OK) {
            fprintf(stderr, "soak_worker: %s\n", wirecore_error_message(err));
            return 2;
        }
        pthread_t threads[4];
        struct job jobs[4];
        for (int t = 0; t < 4; t++) {
            jobs[t] = (struct job){client, base, n + 10 * t};
            pthread_create(&threads[t], NULL, run, &jobs[t]);
        }
        for (int t = 0; t < 4; t++) pthread_join(threads[t], NULL);
        wirecore_client_free(client);
        pthread_mutex_lock(&out);
        printf("tick %lld %ld %ld 0\n", now_ms(), atomic_load(&ok), atomic_load(&bad));
        fflush(stdout);
        pthread_mutex_unlock(&out);
    }
    return 0;
}
