/*
 * What the C ABI test programs (test_capi.c, test_sync.c) share: the check
 * counters and macro, literals as (ptr, len), and byte comparisons.
 */
#ifndef TURNOUT_TEST_CHECK_H
#define TURNOUT_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "turnout.h"

static int passed, failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            passed++;                                                               \
        } else {                                                                    \
            failed++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

/* A string literal as the (ptr, len) pair of the ABI. */
#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static int bytes_eq(TurnoutBytes b, const char *s) {
    return b.len == strlen(s) && (b.len == 0 || memcmp(b.ptr, s, b.len) == 0);
}

static int bytes_has(TurnoutBytes b, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= b.len; i++)
        if (memcmp(b.ptr + i, needle, n) == 0) return 1;
    return 0;
}

#endif
