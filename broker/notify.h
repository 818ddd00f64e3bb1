/* Service manager notifications (sd_notify protocol) without libsystemd. */
#ifndef MBX_NOTIFY_H
#define MBX_NOTIFY_H

/*
 * Sends state ("READY=1", "STOPPING=1", "STATUS=...") to the socket named by
 * $NOTIFY_SOCKET. Returns 0 when sent or when there is no service manager
 * to tell, -errno when sending failed.
 */
int notify_send(const char *state);

#endif
