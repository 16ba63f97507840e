/* What the test examples share (the ones `make test-c` runs against the test server): a CHECK
 * that counts failures and names the example and line, and a reader of the test server's info
 * line. Define EXAMPLE ("name") before including it. */
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

#endif
