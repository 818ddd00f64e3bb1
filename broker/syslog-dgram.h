/* Syslog datagrams that never block the daemon. */
#ifndef MBX_SYSLOG_DGRAM_H
#define MBX_SYSLOG_DGRAM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Sends "<pri>Mmm dd hh:mm:ss mbxd[pid]: text" to /dev/log; false when it
 * could not be sent now (no syslog, or its queue is full). Thread-safe.
 */
bool syslog_dgram_send(int pri, const char *text, size_t len);

#endif
