/* mbxctl policy: offline policy tools (check, explain), no daemon needed. */
#ifndef MBXCTL_CMD_POLICY_H
#define MBXCTL_CMD_POLICY_H

/*
 * Runs `mbxctl policy ...`; argv[0] is "policy". Returns the exit code:
 * check: 0 OK, 1 errors; explain: 0 allowed, 3 denied, 4 invalid, 1 when the
 * policy does not load; 2 on usage errors.
 */
int mbxctl_policy_main(int argc, char **argv);

#endif
