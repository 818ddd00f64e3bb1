/* Reading a file at run time without blocking: see readfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readfile.h"

/* Names a file type for a message. */
const char *readfile_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	case S_IFLNK:
		return "a symlink";
	default:
		return "not a file";
	}
}

/* Refuses what is not a regular file, saying what it is (and that a symlink led there). */
static int readfile_refuse_kind(const char *path, const struct stat *st, char *err, size_t errlen)
{
	struct stat lst;
	bool via_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);

	snprintf(err, errlen, "refusing %s: it is %s%s, not a regular file", path,
		 via_link ? "a symlink to " : "", readfile_kind(st->st_mode));
	return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
}

/* Opens a regular file without blocking; see readfile.h. */
int readfile_open(const char *path, struct stat *st, char *err, size_t errlen)
{
	struct stat before;
	int fd;

	if (stat(path, &before) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(before.st_mode))
		return readfile_refuse_kind(path, &before, err, errlen);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, st) < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return readfile_refuse_kind(path, st, err, errlen);
	}
	if (st->st_dev != before.st_dev || st->st_ino != before.st_ino) {
		snprintf(err, errlen, "refusing %s: it was replaced while being opened", path);
		close(fd);
		return -EAGAIN;
	}
	return fd;
}

/* Reads fd to its end into *buf (grown as needed), within max bytes. */
static int readfile_all(int fd, const char *path, size_t max, char **buf, size_t *n, char *err,
			size_t errlen)
{
	size_t cap = 0;
	ssize_t r;

	for (;;) {
		if (*n == cap) {
			char *nb = realloc(*buf, (cap = cap ? cap * 2 : 4096) + 1);

			if (!nb) {
				snprintf(err, errlen, "cannot read %s: out of memory", path);
				return -ENOMEM;
			}
			*buf = nb;
		}
		r = read(fd, *buf + *n, cap - *n);
		if (r == 0)
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			return -errno;
		}
		*n += (size_t)r;
		if (*n > max) {
			snprintf(err, errlen, "refusing %s: larger than the %zu bytes allowed",
				 path, max);
			return -EFBIG;
		}
	}
}

/* Reads an open regular file to its end, within max bytes; closes fd. */
int readfile_read(int fd, const char *path, size_t max, char **data, size_t *len, char *err,
		  size_t errlen)
{
	char *buf = NULL;
	size_t n = 0;
	int rc = readfile_all(fd, path, max, &buf, &n, err, errlen);

	close(fd);
	*data = NULL;
	*len = 0;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

/* Opens and reads a regular file. */
int readfile_regular(const char *path, size_t max, char **data, size_t *len, struct stat *st,
		     char *err, size_t errlen)
{
	struct stat local;
	int fd;

	*data = NULL;
	*len = 0;
	fd = readfile_open(path, st ? st : &local, err, errlen);
	if (fd < 0)
		return fd;
	return readfile_read(fd, path, max, data, len, err, errlen);
}
