/*
 * The request pipeline: classify and decide, audit, queue for the device,
 * and answer. Background operations are followed by background.c.
 */
#ifndef MBX_REQUEST_H
#define MBX_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <mbx/proto.h>

#include "background.h"

struct session;
struct job;
struct device;
struct policy_decision;

/* Handles one SUBMIT (explain false) or EXPLAIN from a session. */
void request_submit(struct session *s, uint32_t tag, const struct mbx_submit *m, bool explain);
/* Finishes a job the device worker handed back (loop thread). */
void request_complete(struct job *j);
/* Answers a job's requester with a timeout while the hung device still holds it. */
void request_abandon(struct job *j);
/* Closes the books on a queued job whose client left before it ran. */
void request_drop(struct job *j);

/*
 * Applies a new decision to a queued Request Abort (an operation arrived at
 * its target): a denial takes it out of the queue and answers it; an allow
 * keeps it, recorded ahead if the new decision is audited.
 */
void request_redecide(struct job *j, const struct policy_decision *dec);

#endif
