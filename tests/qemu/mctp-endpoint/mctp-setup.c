/*
 * mctp-setup: brings an MCTP interface into service over rtnetlink, as the
 * mctp tool from Code Construct would (no Debian package ships one):
 * link up, a local EID on the interface, and a route per remote EID.
 *
 * Usage: mctp-setup IFNAME LOCAL_EID [REMOTE_EID...]
 * Each step prints what failed and the kernel's errno; exit 1 on any failure.
 */
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#ifndef AF_MCTP
#define AF_MCTP 45
#endif

/* One rtnetlink request: header, family message, attributes. */
struct setup_req {
	struct nlmsghdr nh;
	uint8_t body[256];
};

/* Appends an attribute to a request. */
static void setup_attr(struct setup_req *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((uint8_t *)&r->nh + NLMSG_ALIGN(r->nh.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Starts a request of type with a family header of hlen bytes. */
static void *setup_start(struct setup_req *r, unsigned short type, size_t hlen)
{
	static unsigned seq;

	memset(r, 0, sizeof(*r));
	r->nh.nlmsg_len = (uint32_t)NLMSG_LENGTH(hlen);
	r->nh.nlmsg_type = type;
	r->nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	r->nh.nlmsg_seq = ++seq;
	return NLMSG_DATA(&r->nh);
}

/* Sends a request and reads the kernel's acknowledgement; returns 0 or -errno. */
static int setup_talk(int fd, struct setup_req *r)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	uint8_t buf[4096];
	ssize_t n;

	if (sendto(fd, &r->nh, r->nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->nh.nlmsg_seq || h->nlmsg_type != NLMSG_ERROR)
				continue;
			return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
	}
}

/* Sets the link up. */
static int setup_link_up(int fd, int ifindex)
{
	struct setup_req r;
	struct ifinfomsg *ifi = setup_start(&r, RTM_NEWLINK, sizeof(*ifi));

	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return setup_talk(fd, &r);
}

/* Gives the interface a local EID. */
static int setup_address(int fd, int ifindex, uint8_t eid)
{
	struct setup_req r;
	struct ifaddrmsg *ifa = setup_start(&r, RTM_NEWADDR, sizeof(*ifa));

	ifa->ifa_family = AF_MCTP;
	ifa->ifa_index = (unsigned)ifindex;
	setup_attr(&r, IFA_LOCAL, &eid, 1);
	return setup_talk(fd, &r);
}

/* Routes one remote EID through the interface. */
static int setup_route(int fd, int ifindex, uint8_t eid)
{
	struct setup_req r;
	struct rtmsg *rt = setup_start(&r, RTM_NEWROUTE, sizeof(*rt));
	uint32_t oif = (uint32_t)ifindex;

	rt->rtm_family = AF_MCTP;
	rt->rtm_dst_len = 0; /* a range of one EID */
	rt->rtm_table = RT_TABLE_DEFAULT;
	rt->rtm_protocol = RTPROT_STATIC;
	rt->rtm_scope = RT_SCOPE_LINK;
	rt->rtm_type = RTN_UNICAST;
	setup_attr(&r, RTA_DST, &eid, 1);
	setup_attr(&r, RTA_OIF, &oif, sizeof(oif));
	return setup_talk(fd, &r);
}

/* Parses an EID argument: 8-254, as DSP0236 allows for endpoints. */
static int setup_eid(const char *s, uint8_t *eid)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (end == s || *end || v < 8 || v > 254) {
		fprintf(stderr, "mctp-setup: \"%s\" is not an EID from 8 to 254\n", s);
		return -1;
	}
	*eid = (uint8_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	int fd, ifindex, rc;
	uint8_t eid;

	if (argc < 3) {
		fprintf(stderr, "usage: mctp-setup IFNAME LOCAL_EID [REMOTE_EID...]\n");
		return 2;
	}
	ifindex = (int)if_nametoindex(argv[1]);
	if (!ifindex) {
		fprintf(stderr, "mctp-setup: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		fprintf(stderr, "mctp-setup: netlink socket: %s\n", strerror(errno));
		return 1;
	}
	if ((rc = setup_link_up(fd, ifindex)) < 0) {
		fprintf(stderr, "mctp-setup: %s up: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	if (setup_eid(argv[2], &eid) < 0)
		return 1;
	if ((rc = setup_address(fd, ifindex, eid)) < 0) {
		fprintf(stderr, "mctp-setup: local EID %u on %s: %s\n", eid, argv[1],
			strerror(-rc));
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		if (setup_eid(argv[i], &eid) < 0)
			return 1;
		if ((rc = setup_route(fd, ifindex, eid)) < 0) {
			fprintf(stderr, "mctp-setup: route to EID %u via %s: %s\n", eid, argv[1],
				strerror(-rc));
			return 1;
		}
	}
	close(fd);
	return 0;
}
