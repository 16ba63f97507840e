/* The engine's cookie jar through the C ABI: off by default; enabled by config it stores
 * Set-Cookie, sends the cookie back, lists it as JSON and is emptied by clear_cookies.
 * Usage: cookies BASE_URL */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

#define EXAMPLE "cookies"
#include "check.h"

/* GET base+path; returns the body as a NUL-terminated string to free(). */
static char *get(wirecore_client *client, const char *base, const char *path) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    wirecore_request *req = NULL;
    wirecore_response *resp = NULL;
    wirecore_error *err = NULL;
    if (wirecore_request_new("GET", 3, url, strlen(url), &req, &err) != WIRECORE_OK ||
        wirecore_client_send(client, req, &resp, &err) != WIRECORE_OK) {
        fprintf(stderr, "cookies: GET %s: %s\n", url, wirecore_error_message(err));
        exit(1);
    }
    const uint8_t *body = NULL;
    size_t len = 0;
    if (wirecore_response_body(resp, &body, &len, &err) != WIRECORE_OK) {
        fprintf(stderr, "cookies: body of %s: %s\n", url, wirecore_error_message(err));
        exit(1);
    }
    char *out = malloc(len + 1);
    memcpy(out, body, len);
    out[len] = '\0';
    wirecore_response_free(resp);
    return out;
}

static char *cookies_json(wirecore_client *client) {
    char *json = NULL;
    CHECK(wirecore_client_cookies_json(client, &json, NULL) == WIRECORE_OK, "cookies_json");
    return json;
}

static wirecore_client *client_with(const char *config) {
    wirecore_client *client = NULL;
    wirecore_error *err = NULL;
    if (wirecore_client_new(config, &client, &err) != WIRECORE_OK) {
        fprintf(stderr, "cookies: client: %s\n", wirecore_error_message(err));
        exit(1);
    }
    return client;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];

    wirecore_client *off = client_with(NULL);
    free(get(off, base, "/set-cookie?c=a%3D1"));
    char *body = get(off, base, "/headers");
    CHECK(strstr(body, "\"cookie\"") == NULL, "a cookie was sent with the jar off: %s", body);
    free(body);
    char *json = cookies_json(off);
    CHECK(json && strcmp(json, "[]") == 0, "the jar is off, yet lists %s", json ? json : "NULL");
    wirecore_string_free(json);
    wirecore_client_free(off);

    wirecore_client *on = client_with("{\"cookies\":{\"enabled\":true}}");
    free(get(on, base, "/set-cookie?c=a%3D1%3B%20HttpOnly"));
    body = get(on, base, "/headers");
    CHECK(strstr(body, "\"cookie\":\"a=1\"") != NULL, "the cookie did not come back: %s", body);
    free(body);
    json = cookies_json(on);
    CHECK(json && strstr(json, "\"name\":\"a\"") && strstr(json, "\"http_only\":true") &&
              strstr(json, "\"expires_ms\":null"),
          "cookies_json: %s", json ? json : "NULL");
    wirecore_string_free(json);
    CHECK(wirecore_client_clear_cookies(on) == WIRECORE_OK, "clear_cookies");
    json = cookies_json(on);
    CHECK(json && strcmp(json, "[]") == 0, "cleared, yet lists %s", json ? json : "NULL");
    wirecore_string_free(json);
    CHECK(wirecore_client_clear_cookies(NULL) == WIRECORE_INVALID_ARGUMENT, "clear_cookies(NULL)");
    wirecore_client_close(on, 5000);
    wirecore_client_free(on);
    if (failures) fprintf(stderr, "cookies: %d failures\n", failures);
    return failures ? 1 : 0;
}
