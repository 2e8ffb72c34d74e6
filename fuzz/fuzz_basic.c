/* fuzz_basic.c - the HTTP Basic credential of MIS uploads
 * (misauth_parse_basic): the Authorization value as the client sent it. What
 * it accepts must be a valid login and a password of the allowed size. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "misauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A header value is a C string: evhttp stops at nothing else. */
    char *h = malloc(size + 1);
    if (!h)
        return 0;
    memcpy(h, data, size);
    h[size] = '\0';
    char login[MISAUTH_LOGIN_MAX + 1], password[MISAUTH_PASSWORD_MAX + 1];
    if (misauth_parse_basic(h, login, sizeof(login), password, sizeof(password))) {
        size_t pwlen = strlen(password);
        if (!misauth_login_valid(login) || pwlen == 0 || pwlen > MISAUTH_PASSWORD_MAX)
            abort();
    }
    /* Buffers too small for the parts must be refused, never overrun. */
    char small_login[4], small_pw[4];
    if (misauth_parse_basic(h, small_login, sizeof(small_login), small_pw, sizeof(small_pw)) &&
        (strlen(small_login) >= sizeof(small_login) || strlen(small_pw) >= sizeof(small_pw)))
        abort();
    free(h);
    return 0;
}
