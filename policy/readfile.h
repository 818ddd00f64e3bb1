/*
 * How mbxd reads a file at run time (policy.yaml, users.d/<user>.yaml,
 * mbxd.yaml, the audit checkpoint): never blocking, never anything but a
 * regular file. A users.d symlink may point where a user can put a FIFO
 * (which blocks whoever opens it), a directory or a device node; each is
 * refused by name before a byte is read, and opening one never blocks.
 * Shared by the daemon and mbxctl's offline tools.
 */
#ifndef MBX_READFILE_H
#define MBX_READFILE_H

#include <stddef.h>
#include <sys/stat.h>

/* The most a policy or configuration file may hold. */
#define READFILE_MAX (64u << 20)

/* "a FIFO", "a directory", "a character device", ... for messages. */
const char *readfile_kind(mode_t mode);

/*
 * Opens path for reading. stat() first, so that what is not a regular file
 * is not even opened (opening a device can do something); then open with
 * O_NONBLOCK, O_CLOEXEC and O_NOCTTY, and fstat(): it must be the same
 * regular file, or it is refused (it was replaced in between, and the open
 * did not block). Returns the descriptor with *st filled, or -errno with
 * err naming the path and what it is ("refusing P: it is a FIFO, not a
 * regular file").
 */
int readfile_open(const char *path, struct stat *st, char *err, size_t errlen);

/*
 * Reads what readfile_open opened, to its end (at most max bytes), into
 * *data (malloc'ed, NUL-terminated, *len bytes without the NUL); closes fd.
 * Returns 0 or -errno with err set.
 */
int readfile_read(int fd, const char *path, size_t max, char **data, size_t *len, char *err,
		  size_t errlen);

/* readfile_open, then readfile_read; st may be NULL. */
int readfile_regular(const char *path, size_t max, char **data, size_t *len, struct stat *st,
		     char *err, size_t errlen);

#endif
