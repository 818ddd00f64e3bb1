/*
 * mbxd: the CXL mailbox broker. Start-up, signals and the event loop; the
 * only place in the project allowed to exit on error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "audit-limit.h"
#include "refusal-pace.h"
#include "audit-anchor.h"
#include "audit.h"
#include "broker.h"
#include "config.h"
#include "device.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "policy-watch.h"
#include "policy.h"
#include "sandbox.h"
#include "session.h"

#define DEFAULT_CONFIG "/etc/mbxd/mbxd.yaml"

struct options {
	const char *config;
	bool foreground;
	bool check_only;
	bool no_sandbox;
	int verbose;
};

static void usage(void)
{
	fprintf(stderr, "usage: mbxd [-dnv] [-f config] [--no-sandbox]\n"
			"  -f FILE       configuration (default " DEFAULT_CONFIG ")\n"
			"  -d            stay in the foreground, log to stderr\n"
			"  -n            check the configuration and policy, then exit\n"
			"  -v            verbose logging\n"
			"  --no-sandbox  stay root, no seccomp filter: for debugging only\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"no-sandbox", no_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	o->config = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "f:dnvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			o->no_sandbox = true;
			break;
		case 'f':
			o->config = optarg;
			break;
		case 'd':
			o->foreground = true;
			break;
		case 'n':
			o->check_only = true;
			break;
		case 'v':
			o->verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

/* Loads the policy or prints every error as file:line and exits. */
static struct policy *load_policy_or_exit(const struct config *cfg)
{
	struct policy_errors errs = {0};
	struct policy *p = NULL;

	if (policy_load(cfg->policy_path, NULL, true, &p, &errs) == 0)
		return p;
	policy_errors_print(stderr, &errs);
	if (errs.n == 0)
		fprintf(stderr, "%s: cannot load the policy\n", cfg->policy_path);
	exit(1);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct broker *b = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		notify_send("STOPPING=1");
		broker_stop(b);
		break;
	case SIGHUP:
		broker_reload_policy(b);
		break;
	case SIGUSR1:
		/* Counts so far belong to the old file: no count crosses a rotation unwritten. */
		audit_limit_flush(b->audit_limit, broker_now_us() / 1000);
		audit_anchor_rotate(b);
		break;
	}
}

/* Every audit.coalesce_ms: the log is checked and refusal counts become SUPPRESSED records. */
static void on_audit_timer(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;
	int rc;

	(void)fd;
	(void)what;
	/* A log deleted while nothing was written is noticed here, not at the next record. */
	audit_check(b->audit);
	rc = audit_limit_flush(b->audit_limit, broker_now_us() / 1000);
	if (rc < 0)
		log_warnx("audit log: cannot write coalesced refusal counts (%s); %llu kept for "
			  "the next try",
			  strerror(-rc), (unsigned long long)audit_limit_pending(b->audit_limit));
}

/* Opens the refusal limiter and its flush timer. */
static void audit_limit_start(struct broker *b)
{
	struct audit_limit_config lc = {
	    .burst = b->cfg->audit_refused_burst,
	    .per_minute = b->cfg->audit_refused_per_minute,
	    .window_ms = b->cfg->audit_coalesce_ms,
	};
	struct timeval tv = {lc.window_ms / 1000, (lc.window_ms % 1000) * 1000};

	b->audit_limit = audit_limit_new(b->audit, &lc);
	b->audit_timer = event_new(b->base, -1, EV_PERSIST, on_audit_timer, b);
	if (!b->audit_limit || !b->audit_timer || event_add(b->audit_timer, &tv) < 0)
		fatalx("cannot start the audit limiter");
	b->refusal_pace = refusal_pace_new(b->cfg->max_refusals_per_s);
	if (!b->refusal_pace)
		fatalx("cannot start the refusal pacer");
}

static void add_signal(struct broker *b, int sig, struct event **ev)
{
	*ev = evsignal_new(b->base, sig, on_signal, b);
	if (!*ev || event_add(*ev, NULL) < 0)
		fatalx("cannot watch signal %d", sig);
}

/* Raises the descriptor limit so max_clients connections can be held at once. */
static void raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_clients + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		log_warnx("descriptor limit %llu is below max_clients %u: raise it (LimitNOFILE=)",
			  (unsigned long long)rl.rlim_cur, cfg->max_clients);
}

/* Opens every configured device; one that fails stops the start. */
static void open_devices(struct broker *b)
{
	char err[512];

	b->devices = calloc(b->cfg->n_devices, sizeof(*b->devices));
	if (!b->devices)
		fatal("calloc");
	for (size_t i = 0; i < b->cfg->n_devices; i++) {
		err[0] = '\0';
		if (device_open(b, &b->cfg->devices[i], &b->devices[i], err, sizeof(err)) < 0) {
			fatalx("%s", err[0] ? err : "cannot open a device");
		}
		b->n_devices++;
	}
}

/* mbxd -n: the devices' options too, then the verdict; frees what start-up loaded. */
static int check_and_exit(struct broker *b)
{
	char err[512] = "";
	int rc = device_check_config(b->cfg, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "%s\n", err);
	else
		printf("configuration OK\n");
	policy_free(b->policy);
	config_free(b->cfg);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct broker b = {.listen_fd = -1};
	struct event *sigs[4];
	struct options o = {0};
	struct sandbox_user run_as;
	char err[512] = "";

	parse_args(argc, argv, &o);
	log_init(true, o.verbose);
	if (config_load(o.config, &b.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	b.policy = load_policy_or_exit(b.cfg);
	/* Before anything is opened: a missing run user stops the start, named. */
	if (!o.no_sandbox && (sandbox_user_lookup(b.cfg->run_user, &run_as, err, sizeof(err)) < 0 ||
			      (!o.check_only && sandbox_can_drop(&run_as, err, sizeof(err)) < 0))) {
		fprintf(stderr, "%s: %s\n", b.cfg->path, err);
		return 1;
	}
	if (o.check_only)
		return check_and_exit(&b);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(b.cfg);
	if (evthread_use_pthreads() < 0)
		fatalx("libevent has no pthreads support");
	b.base = event_base_new();
	if (!b.base)
		fatalx("cannot create the event loop");
	TAILQ_INIT(&b.sessions);
	/* Before the socket listens: a client may signal as soon as it can connect. */
	add_signal(&b, SIGTERM, &sigs[0]);
	add_signal(&b, SIGINT, &sigs[1]);
	add_signal(&b, SIGHUP, &sigs[2]);
	add_signal(&b, SIGUSR1, &sigs[3]);
	if (audit_open(b.cfg->audit_path, &b.audit, err, sizeof(err)) < 0)
		fatalx("audit log: %s", err);
	if (audit_torn_bytes(b.audit))
		log_warnx("audit log %s: cut %zu bytes of a torn last record (a crash mid-write)",
			  b.cfg->audit_path, audit_torn_bytes(b.audit));
	if (audit_anchor_open(&b, o.no_sandbox ? (uid_t)-1 : run_as.uid,
			      o.no_sandbox ? (gid_t)-1 : run_as.gid, err, sizeof(err)) < 0)
		fatalx("%s", err);
	audit_limit_start(&b);
	open_devices(&b);
	b.listen_fd = listener_open(b.cfg, err, sizeof(err));
	if (b.listen_fd < 0)
		fatalx("%s", err);
	if (!o.foreground) {
		if (daemon(0, 0) < 0)
			fatal("daemon");
		log_init(false, o.verbose);
		if (event_reinit(b.base) < 0)
			fatalx("cannot reinitialise the event loop after fork");
	}
	/* Devices, socket and audit log are open: root is no longer needed. Threads
	 * start after the drop, so each inherits the dropped credentials. */
	if (o.no_sandbox)
		log_warnx("--no-sandbox: mbxd keeps root and runs without its seccomp filter; "
			  "for debugging only, never in production");
	else if (sandbox_drop(&run_as, b.cfg->audit_path, sandbox_transport_caps(&b), err,
			      sizeof(err)) < 0)
		fatalx("%s", err);
	for (size_t i = 0; i < b.n_devices; i++)
		if (device_start(b.devices[i], err, sizeof(err)) < 0)
			fatalx("%s", err);
	if (listener_start(&b) < 0)
		fatalx("cannot accept on %s", b.cfg->socket_path);
	policy_watch_start(&b);
	if (audit_anchor_start(&b) < 0)
		fatalx("cannot arm the audit checkpoint timer");
	/* Every thread runs now: the filter covers them all (TSYNC) and need not
	 * allow creating threads or processes. */
	if (!o.no_sandbox && sandbox_lock(&b, err, sizeof(err)) < 0)
		fatalx("%s", err);
	log_info("%s listening on %s with %zu devices%s%s", MBX_SOFTWARE, b.cfg->socket_path,
		 b.n_devices, o.no_sandbox ? ", no sandbox" : ", sandboxed as ",
		 o.no_sandbox ? "" : run_as.name);
	notify_send("READY=1");

	event_base_dispatch(b.base);

	policy_watch_stop(&b);
	while (!TAILQ_EMPTY(&b.sessions))
		session_free(TAILQ_FIRST(&b.sessions));
	for (size_t i = 0; i < b.n_devices; i++)
		device_close(b.devices[i]);
	for (size_t i = 0; i < 4; i++)
		event_free(sigs[i]);
	if (b.stop_check)
		event_free(b.stop_check);
	listener_close(&b);
	event_free(b.audit_timer);
	/* The last counts are written before the log closes: none is lost at a stop. */
	audit_limit_free(b.audit_limit, broker_now_us() / 1000);
	refusal_pace_free(b.refusal_pace);
	audit_anchor_stop(&b);
	audit_close(b.audit);
	policy_free(b.policy);
	free(b.devices);
	config_free(b.cfg);
	event_base_free(b.base);
	log_info("stopped");
	return 0;
}
