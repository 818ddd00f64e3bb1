/* The listening Unix socket. */
#ifndef MBX_LISTENER_H
#define MBX_LISTENER_H

#include <stddef.h>

struct config;
struct broker;

int listener_open(const struct config *cfg, char *err, size_t errlen);
int listener_start(struct broker *b);
void listener_close(struct broker *b);

#endif
