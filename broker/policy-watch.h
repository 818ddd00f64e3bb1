/* Reloading the policy when a file in its users_dir changes (inotify). */
#ifndef MBX_POLICY_WATCH_H
#define MBX_POLICY_WATCH_H

struct broker;

/* Watches the current policy's users_dir (none: nothing to do). Returns 0 or -errno. */
int policy_watch_start(struct broker *b);
/* After a reload: follows users_dir if the new policy names another folder. */
void policy_watch_follow(struct broker *b);
/* Stops watching; safe to call when not watching. */
void policy_watch_stop(struct broker *b);

#endif
