/* api/api.h - the handlers, one file per endpoint family. */
#ifndef MIPGW_API_H
#define MIPGW_API_H

#include "req.h"

/* api/service.c: the service's own endpoints */
void api_health(struct req *r);
void api_ready(struct req *r);
void api_metrics(struct req *r);

/* api/tokens.c: patient identification and tokens (seed 000) */
void api_cod_token(struct req *r);
void api_rpgu_token(struct req *r);
void api_token_session(struct req *r);

/* api/mis.c: hospitals' systems, the project's own */
void api_mis_whoami(struct req *r);
/* api/schedule.c: a resource's schedule for portals (issue 3) */
void api_schedule(struct req *r);

/* api/refdata.c: reference-data uploads under /mis/v1 (the project's own) */
void api_mis_lpus(struct req *r);
void api_mis_resources(struct req *r);
void api_mis_cells(struct req *r);
void api_mis_referrals(struct req *r);
void api_mis_dispensary(struct req *r);

/* api/patients.c: POST /patients, a patient's card from an MIS (seed 003) */
void api_patients_upload(struct req *r);

/* api/booking.c: booking, cancellation and a patient's bookings (seeds 001, 002) */
void api_booking_entry(struct req *r);
void api_booking_direction(struct req *r);
void api_booking_cancel(struct req *r);
void api_booking_visits(struct req *r);

/* api/cabinet.c: the eHealth cabinet sign-up (seed 004, issue 5) */
void api_cabinet_user_request(struct req *r);
void api_cabinet_otp(struct req *r);
void api_cabinet_register(struct req *r);

#endif
