/*
 * The request pipeline: classify and decide, audit, queue for the device,
 * and answer. Background operations are followed by background.c.
 */
#ifndef MBX_REQUEST_H
#define MBX_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <mbx/proto.h>

struct session;
struct job;
struct device;

/* Handles one SUBMIT (explain false) or EXPLAIN from a session. */
void request_submit(struct session *s, uint32_t tag, const struct mbx_submit *m, bool explain);
/* Finishes a job the device worker handed back (loop thread). */
void request_complete(struct job *j);
/* Answers a job's requester with a timeout while the hung device still holds it. */
void request_abandon(struct job *j);
/* Closes the books on a queued job whose client left before it ran. */
void request_drop(struct job *j);

/* Starts following a background operation the device just began. */
void background_start(struct device *d, struct job *origin);
/* Handles the answer to one Background Operation Status poll. */
void background_on_poll(struct job *j);
/* Adds s to the device's watchers; -EALREADY when it watches it already. */
int background_watch(struct session *s, struct device *d, uint32_t tag);
/* Sends s an EVENT with the progress of the device's running operation, if any. */
void background_report(struct session *s, struct device *d, uint32_t tag);
/* Removes every watch of a session that is going away. */
void background_unwatch_all(struct session *s);

#endif
