/* sms.h - how an SMS leaves the gateway, chosen by ehealth.sms_sender:
 *   redis    pushed, with its phone and time, onto the Redis list
 *            ehealth.sms_sink_key (trimmed to sms_sink_max): what the demo
 *            and the tests read instead of a phone;
 *   webhook  POSTed as {"phone", "text"} to ehealth.sms_webhook_url, the
 *            operator's SMS gateway, each attempt with a deadline
 *            (sms_timeout_ms) and up to sms_retries more after a failure
 *            (no answer, refused, or not 2xx), with a growing pause.
 * The text is never logged: it holds a code. */
#ifndef MIPGW_SMS_H
#define MIPGW_SMS_H

#include <stdbool.h>

#include "req.h"

#define SMS_RESPONSE_MAX 65536   /* bytes of a webhook's answer we read at most */

/* Called once on the request's loop: sent when the sink took it or the
 * webhook answered 2xx. */
typedef void (*sms_cb)(struct req *r, bool sent, void *arg);

void sms_send(struct req *r, const char *phone, const char *text, sms_cb cb, void *arg);

#endif
