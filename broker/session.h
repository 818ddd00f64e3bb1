/*
 * One client connection: its identity as the kernel reported it, its
 * framing, and the requests it has open. A malformed frame closes this
 * session only.
 */
#ifndef MBX_SESSION_H
#define MBX_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <mbx/proto.h>

#include "device.h"
#include "policy.h"

struct broker;
struct bufferevent;
struct event;

/* Who is on the other end, from SO_PEERCRED and SO_PEERGROUPS. */
struct identity {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char user[64];
	char **groups; /* names of the primary and supplementary groups */
	size_t n_groups;
	char unresolved[192]; /* "" or the lookup that failed: then every request is refused */
	struct policy_principal principal; /* points into the fields above */
};

/* The one deadline a session's timer runs for at a time. */
enum session_deadline {
	SESSION_DEADLINE_NONE,
	SESSION_DEADLINE_HELLO, /* from connect until HELLO is answered */
	SESSION_DEADLINE_FRAME, /* from the first byte of a frame until its last */
	SESSION_DEADLINE_CLOSE, /* after an ERROR: freed even if it is never read */
};

/* An EVENT held for a client that is at its bound (session_send_event). */
struct session_held {
	uint32_t tag;
	struct mbx_event ev;
};

struct session {
	TAILQ_ENTRY(session) entry;
	struct broker *broker;
	struct bufferevent *bev;
	uint64_t id;
	bool hello_done;
	bool closing;   /* an ERROR is on its way out; then the session is freed */
	bool throttled; /* reading paused: at its pending bound, or paced */
	bool paced;     /* its user is refused too fast: not read until pace_timer fires */
	struct event *pace_timer;
	bool flowing;    /* in session_flow: not re-entered from the writes it makes */
	bool more_input; /* while dispatching: another request is already read */
	enum session_deadline deadline; /* what the timer is running for */
	struct event *timer;
	struct identity who;
	TAILQ_HEAD(, job) jobs; /* open requests: queued, running, or background */
	size_t n_jobs;
	size_t reserved;           /* bytes the open requests hold against the pending bound */
	size_t body_max;           /* the largest frame body this client may send */
	struct session_held *held; /* EVENTs waiting while the client is at its bound */
	size_t n_held, cap_held;
	TAILQ_HEAD(, watch) watches; /* devices this session follows (WATCH) */
};

/* Reads the peer's credentials; -errno when the kernel cannot tell who it is. */
int identity_from_socket(int fd, struct identity *id);
void identity_clear(struct identity *id);

/* Takes a freshly accepted socket; on failure the socket is closed. */
int session_new(struct broker *b, int fd);
/* Sends an ERROR on a socket no session owns yet, then closes it. */
void session_refuse_fd(int fd, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees a session now; open requests are dropped or detached. */
void session_free(struct session *s);
/* Sends an ERROR frame, then closes the session once it is written. */
void session_fail(struct session *s, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void session_send_result(struct session *s, uint32_t tag, const struct mbx_result *r);
/* Sends the RESULT of a refused request, pausing the client if its user is refused too fast. */
void session_send_refusal(struct session *s, uint32_t tag, const struct mbx_result *r);
void session_send_event(struct session *s, uint32_t tag, const struct mbx_event *ev);

/* After a policy reload: ends the watches of devices their sessions may no longer see. */
void session_policy_changed(struct broker *b);

/* Remembers an open request of this session, and forgets it. */
void session_add_job(struct session *s, struct job *j);
void session_remove_job(struct session *s, struct job *j);

#endif
