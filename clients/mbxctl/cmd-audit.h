/* mbxctl audit: offline checks of mbxd's audit files, no daemon needed. */
#ifndef MBXCTL_CMD_AUDIT_H
#define MBXCTL_CMD_AUDIT_H

struct ctl;

/*
 * Runs `mbxctl audit verify [--prev HASH] FILE...`; argv[0] is "audit".
 * FILEs are one chain, oldest first (audit.jsonl.2 audit.jsonl.1
 * audit.jsonl). Returns 0 when every link holds, 1 when a record is broken
 * or a file cannot be read, 2 on usage errors.
 */
int cmd_audit(struct ctl *ctl, int argc, char **argv);

#endif
