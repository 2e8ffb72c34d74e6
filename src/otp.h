/* otp.h - SMS one-time passwords of the cabinet sign-up (issue 5). A code is
 * four digits, the last a Luhn check digit of the first three; it lives in
 * Redis under its phone number as an HMAC (keyed with the cabinet's key,
 * so a copy of Redis does not give the codes away), with its expiry by
 * Redis's own clock (shared by every gateway) and its attempts left. A new
 * code replaces the phone's earlier one; code requests per phone are
 * counted in a window. Codes are never logged. */
#ifndef MIPGW_OTP_H
#define MIPGW_OTP_H

#include <stdbool.h>
#include <stdint.h>

#include "req.h"

#define OTP_LEN 4

enum otp_verdict {
    OTP_OK,             /* issued; or the code is right */
    OTP_WRONG,          /* wrong code, an attempt spent: "Invalid verification code" */
    OTP_NONE,           /* no code for this phone (never asked, or swept) */
    OTP_EXPIRED,        /* "Verification code expired" */
    OTP_EXHAUSTED,      /* no attempts left: "Maximum attempts exceed" */
    OTP_RATE_LIMITED,   /* too many code requests for this phone */
    OTP_CLAIMED,        /* right, but another person has used it: "Invalid verification code" */
    OTP_STORE_FAILED,   /* Redis did not answer: see the store status */
};

/* Called once, on the request's loop, with st the store status behind
 * OTP_STORE_FAILED. */
typedef void (*otp_cb)(struct req *r, enum otp_verdict v, enum store_status st, void *arg);

/* A fresh code for phone into code (OTP_LEN digits and a NUL), stored and
 * counted; the code is good only when cb gets OTP_OK. */
void otp_issue(struct req *r, const char *phone, char code[OTP_LEN + 1], otp_cb cb, void *arg);
/* Checks code for phone on behalf of claimant (the person signing up: the
 * UserRequest's tax id), and with claim, claims a right one: from then on
 * it is right for that claimant alone (until otp_consume or its expiry).
 * A sign-up checks first and claims once nothing else can refuse it, so
 * that a registration refused for another reason neither spends the code
 * nor takes it from the person it was sent for; one code never signs up
 * two people (who share a phone, say), and one person is signed up once
 * by the database's rules. */
void otp_check(struct req *r, const char *phone, const char *code, const char *claimant, bool claim,
               otp_cb cb, void *arg);
/* Forgets phone's code once it has served claimant, unless a newer code
 * has replaced it; not waited for (a claimed code left behind serves no
 * one else, and expires). */
void otp_consume(struct req *r, const char *phone, const char *claimant);

/* The message of a verdict at $.otp ("Invalid verification code", ...). */
const char *otp_verdict_message(enum otp_verdict v);

#endif
