/* The C fetcher of the fault matrix (tests/faults): for each stdin line "METHOD URL CONFIG_JSON",
 * one request on a fresh client; prints "status CODE BODY_LEN" or "error CODE". */
#include <stdio.h>
#include <string.h>

#include "wirecore.h"

static void report(wirecore_error *err) {
    printf("error %s\n", wirecore_error_code(err));
    wirecore_error_free(err);
}

static void fetch(const char *method, const char *url, const char *config) {
    wirecore_error *err = NULL;
    wirecore_client *client = NULL;
    if (wirecore_client_new(config, &client, &err) != WIRECORE_OK) {
        report(err);
        return;
    }
    wirecore_request *req = NULL;
    wirecore_response *resp = NULL;
    const uint8_t *body = NULL;
    size_t len = 0;
    if (wirecore_request_new(method, strlen(method), url, strlen(url), &req, &err) != WIRECORE_OK)
        report(err);
    else if (!strcmp(method, "POST") &&
             wirecore_request_set_body(req, (const uint8_t *)"fault", 5, &err) != WIRECORE_OK) {
        report(err);
        wirecore_request_free(req);
    } else if (wirecore_client_send(client, req, &resp, &err) != WIRECORE_OK)
        report(err);
    else if (wirecore_response_body(resp, &body, &len, &err) != WIRECORE_OK)
        report(err);
    else
        printf("status %u %zu\n", (unsigned)wirecore_response_status(resp), len);
    wirecore_response_free(resp);
    wirecore_client_free(client);
}

int main(void) {
    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        char *url = strchr(line, ' ');
        char *config = url ? strchr(url + 1, ' ') : NULL;
        if (!config) {
            puts("error invalid_request");
        } else {
            *url++ = 0;
            *config++ = 0;
            fetch(line, url, config);
        }
        fflush(stdout);
    }
    return 0;
}
