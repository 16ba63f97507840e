/* Proxies through the C ABI against the test server's own (tests/server/README.md): an HTTP
 * proxy in absolute form and through CONNECT (h2 and h1 over TLS), proxy auth, no_proxy, and
 * SOCKS5 (socks5:// resolves here, socks5h:// at the proxy; user name and password).
 * Usage: proxy SERVER_INFO_JSON (the test server's first line) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

#define EXAMPLE "proxy"
#include "check.h"

static char http_url[256], https_url[256], control_url[256], ca[512];
static char proxy[64], proxy_auth[64], socks5[64], socks5_auth[64], creds[64];

/* A client whose "proxy" section is `proxy_json` (environment variables ignored). */
static wirecore_client *client_new(const char *proxy_json, const char *more) {
    char config[2048];
    snprintf(config, sizeof config, "{\"proxy\":{\"from_env\":false,%s},\"tls\":{\"ca_files\":[\"%s\"]}%s}",
             proxy_json, ca, more ? more : "");
    wirecore_client *c = NULL;
    wirecore_error *err = NULL;
    if (wirecore_client_new(config, &c, &err) != WIRECORE_OK) {
        fprintf(stderr, "proxy: client %s: %s\n", config, wirecore_error_message(err));
        exit(1);
    }
    return c;
}

struct result {
    int status;         /* 0 on error */
    int version;        /* 11, 20 */
    char *body;         /* to free */
    char code[32];      /* the error code on error */
    char message[1024]; /* the error message on error */
};

static struct result get(wirecore_client *c, const char *base, const char *path) {
    struct result r = {0};
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    wirecore_request *req = NULL;
    wirecore_response *resp = NULL;
    wirecore_error *err = NULL;
    if (wirecore_request_new("GET", 3, url, strlen(url), &req, &err) != WIRECORE_OK ||
        wirecore_client_send(c, req, &resp, &err) != WIRECORE_OK) {
        snprintf(r.code, sizeof r.code, "%s", wirecore_error_code(err));
        snprintf(r.message, sizeof r.message, "%s", wirecore_error_message(err));
        wirecore_error_free(err);
        return r;
    }
    r.status = wirecore_response_status(resp);
    r.version = wirecore_response_version(resp);
    const uint8_t *data = NULL;
    size_t len = 0;
    if (wirecore_response_body(resp, &data, &len, NULL) == WIRECORE_OK) {
        r.body = malloc(len + 1);
        if (!r.body) abort();
        memcpy(r.body, data, len);
        r.body[len] = 0;
    }
    wirecore_response_free(resp);
    return r;
}

static void done(wirecore_client *c, struct result *r) {
    free(r->body);
    r->body = NULL;
    if (c) {
        wirecore_client_close(c, 5000);
        wirecore_client_free(c);
    }
}

static wirecore_client *ctl;

static char *control(const char *method, const char *path) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", control_url, path);
    wirecore_request *req = NULL;
    wirecore_response *resp = NULL;
    wirecore_error *err = NULL;
    if (wirecore_request_new(method, strlen(method), url, strlen(url), &req, &err) != WIRECORE_OK ||
        wirecore_client_send(ctl, req, &resp, &err) != WIRECORE_OK) {
        fprintf(stderr, "proxy: control %s: %s\n", path, wirecore_error_message(err));
        exit(1);
    }
    const uint8_t *data = NULL;
    size_t len = 0;
    char *out = NULL;
    if (wirecore_response_body(resp, &data, &len, NULL) == WIRECORE_OK) {
        out = malloc(len + 1);
        if (!out) abort();
        memcpy(out, data, len);
        out[len] = 0;
    }
    wirecore_response_free(resp);
    return out;
}

static void reset(void) { free(control("POST", "/_control/reset")); }

/* A counter of one proxy in GET /_control/proxies ({"proxy":{"tunnels":N,…},…}). */
static long counter(const char *which, const char *field) {
    char *json = control("GET", "/_control/proxies");
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":{", which);
    const char *obj = json ? strstr(json, pat) : NULL;
    long v = -1;
    if (obj) {
        const char *end = strchr(obj, '}');
        snprintf(pat, sizeof pat, "\"%s\":", field);
        const char *f = strstr(obj, pat);
        if (f && f < end) v = strtol(f + strlen(pat), NULL, 10);
    }
    free(json);
    return v;
}

/* Whether the SOCKS5 proxy `which` was asked for `target`. */
static int asked(const char *which, const char *target) {
    char *json = control("GET", "/_control/proxies");
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":{", which);
    const char *obj = json ? strstr(json, pat) : NULL;
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", target);
    const char *hit = obj ? strstr(obj, want) : NULL;
    int yes = hit && hit < strchr(obj, '}');
    free(json);
    return yes;
}

static const char *port_of(const char *url) { return strrchr(url, ':') + 1; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SERVER_INFO_JSON\n", argv[0]);
        return 2;
    }
    const char *info = argv[1];
    info_field(info, "http", http_url, sizeof http_url);
    info_field(info, "https", https_url, sizeof https_url);
    info_field(info, "control", control_url, sizeof control_url);
    info_field(info, "ca", ca, sizeof ca);
    info_field(info, "proxy", proxy, sizeof proxy);
    info_field(info, "proxy_auth", proxy_auth, sizeof proxy_auth);
    info_field(info, "socks5", socks5, sizeof socks5);
    info_field(info, "socks5_auth", socks5_auth, sizeof socks5_auth);
    info_field(info, "proxy_credentials", creds, sizeof creds);
    ctl = client_new("\"no_proxy\":[\"*\"]", NULL);
    char p[512];

    /* Absolute form; the proxy's credentials never reach the origin. */
    reset();
    snprintf(p, sizeof p, "\"http\":\"http://%s@%s\"", creds, proxy_auth);
    wirecore_client *c = client_new(p, NULL);
    struct result r = get(c, http_url, "/headers");
    CHECK(r.status == 200 && r.version == 11, "absolute form: %d %d %s", r.status, r.version, r.message);
    CHECK(r.body && strstr(r.body, "\"via\":\"1.1 wirecore-test-proxy\"") &&
              !strstr(r.body, "proxy-authorization"),
          "the origin saw %s", r.body ? r.body : "nothing");
    done(c, &r);
    CHECK(counter("proxy_auth", "forwarded") == 1 && counter("proxy_auth", "rejected") == 0,
          "proxy_auth counters");

    /* CONNECT with h2 inside, then with h1 (http2 off); one pooled tunnel each. */
    const char *h2_off[] = {NULL, ",\"http2\":{\"enabled\":false}"};
    const int want_version[] = {20, 11};
    for (int i = 0; i < 2; i++) {
        reset();
        snprintf(p, sizeof p, "\"https\":\"http://%s\"", proxy);
        c = client_new(p, h2_off[i]);
        for (int round = 0; round < 3; round++) {
            r = get(c, https_url, "/bytes/4");
            CHECK(r.status == 200 && r.version == want_version[i], "CONNECT: %d %d %s", r.status,
                  r.version, r.message);
            done(NULL, &r);
        }
        done(c, &r);
        CHECK(counter("proxy", "tunnels") == 1 && counter("proxy", "forwarded") == 0,
              "CONNECT %d: tunnels %ld", want_version[i], counter("proxy", "tunnels"));
    }

    /* A proxy that wants credentials: 407 to CONNECT is "connect"; over http:// the response. */
    reset();
    const char *userinfo[] = {"", "wirecore:wrong@"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "\"https\":\"http://%s%s\"", userinfo[i], proxy_auth);
        c = client_new(p, NULL);
        r = get(c, https_url, "/bytes/1");
        CHECK(r.status == 0 && strcmp(r.code, "connect") == 0 && strstr(r.message, "407") &&
                  strstr(r.message, proxy_auth),
              "407 (%s): %d %s %s", userinfo[i], r.status, r.code, r.message);
        done(c, &r);
    }
    snprintf(p, sizeof p, "\"http\":\"http://%s\"", proxy_auth);
    c = client_new(p, NULL);
    r = get(c, http_url, "/bytes/1");
    CHECK(r.status == 407, "http:// through proxy_auth without credentials: %d", r.status);
    done(c, &r);
    CHECK(counter("proxy_auth", "rejected") == 3, "rejected %ld, want 3 (not retried)",
          counter("proxy_auth", "rejected"));

    /* no_proxy. */
    reset();
    char entry[3][64];
    snprintf(entry[0], sizeof entry[0], "127.0.0.1");
    snprintf(entry[1], sizeof entry[1], "*");
    snprintf(entry[2], sizeof entry[2], "127.0.0.1:%s", port_of(http_url));
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "\"http\":\"http://%s\",\"no_proxy\":[\"%s\"]", proxy, entry[i]);
        c = client_new(p, NULL);
        r = get(c, http_url, "/headers");
        CHECK(r.status == 200 && r.body && !strstr(r.body, "wirecore-test-proxy"),
              "no_proxy %s: %d", entry[i], r.status);
        done(c, &r);
    }
    CHECK(counter("proxy", "forwarded") == 0, "no_proxy: forwarded %ld", counter("proxy", "forwarded"));

    /* SOCKS5: the client resolves (socks5://) or the proxy does (socks5h://); h2 inside TLS. */
    const char *schemes[] = {"socks5", "socks5h"};
    for (int i = 0; i < 2; i++) {
        reset();
        snprintf(p, sizeof p, "\"http\":\"%s://%s\",\"https\":\"%s://%s\"", schemes[i], socks5, schemes[i],
                 socks5);
        c = client_new(p, NULL);
        r = get(c, http_url, "/headers");
        CHECK(r.status == 200 && r.body && !strstr(r.body, "wirecore-test-proxy"), "%s http: %d %s",
              schemes[i], r.status, r.message);
        done(NULL, &r);
        r = get(c, https_url, "/bytes/2");
        CHECK(r.status == 200 && r.version == 20, "%s https: %d %d %s", schemes[i], r.status, r.version,
              r.message);
        done(c, &r);
        char t[300];
        snprintf(t, sizeof t, "ip:%s", http_url + strlen("http://"));
        CHECK(asked("socks5", t), "%s: not asked for %s", schemes[i], t);
        if (i == 0) {
            char v4[128], v6[128];
            snprintf(v4, sizeof v4, "ip:127.0.0.1:%s", port_of(https_url));
            snprintf(v6, sizeof v6, "ip:[::1]:%s", port_of(https_url));
            CHECK(asked("socks5", v4) || asked("socks5", v6), "socks5: localhost not resolved here");
        } else {
            snprintf(t, sizeof t, "name:localhost:%s", port_of(https_url));
            CHECK(asked("socks5", t), "socks5h: not asked for %s", t);
        }
        CHECK(counter("socks5", "tunnels") == 2, "%s: tunnels %ld", schemes[i], counter("socks5", "tunnels"));
    }

    /* SOCKS5 user name and password; refusals are "connect" errors, not retried. */
    reset();
    snprintf(p, sizeof p, "\"https\":\"socks5h://%s@%s\"", creds, socks5_auth);
    c = client_new(p, NULL);
    r = get(c, https_url, "/bytes/1");
    CHECK(r.status == 200, "socks5 auth: %d %s", r.status, r.message);
    done(c, &r);
    const char *says[] = {"accepts none of the offered authentication methods",
                          "refused the user name and password"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "\"https\":\"socks5://%s%s\"", userinfo[i], socks5_auth);
        c = client_new(p, NULL);
        r = get(c, https_url, "/bytes/1");
        CHECK(r.status == 0 && strcmp(r.code, "connect") == 0 && strstr(r.message, says[i]),
              "socks5 refusal (%s): %s %s", userinfo[i], r.code, r.message);
        done(c, &r);
    }
    CHECK(counter("socks5_auth", "tunnels") == 1 && counter("socks5_auth", "rejected") == 2,
          "socks5_auth: tunnels %ld rejected %ld", counter("socks5_auth", "tunnels"),
          counter("socks5_auth", "rejected"));

    wirecore_client_close(ctl, 5000);
    wirecore_client_free(ctl);
    if (failures) fprintf(stderr, "proxy: %d failures\n", failures);
    return failures ? 1 : 0;
}
