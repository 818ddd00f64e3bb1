/*
 * The sim's CXL switch CCI: FM-API physical switch commands over a set of
 * ports, port 0 upstream, one downstream port linked to a Type 3 memory
 * device (a full sim_memdev) that Tunnel Management (5300h) reaches, and
 * optionally (ld_count) a multi-logical device on the next port, whose
 * FM-owned LD tunnels on to its LDs: two tunnel levels deep.
 * Layouts follow CXL r3.1 section 7.6.7 (as encoded in QEMU and libcxlmi).
 */
#include <stdlib.h>
#include <string.h>

#include "cci.h"
#include "sim-model.h"

const char sim_switch_model_name[] = "mbxd-sim CXL switch";

#define SIM_SW_VENDOR 0x1b36 /* the PCI vendor id of emulated devices */
#define SIM_SW_DEVICE 0x5a02

/* Tunnelled messages carry a le16 size: the device behind stays within it. */
#define SIM_SW_INNER_PAYLOAD_MAX 32768u

/* Get Physical Port State (CXL r3.1 Table 7-19). */
#define SIM_PORT_INFO          16
#define SIM_PORT_STATE_HEADER  4
#define SIM_PORT_STATE_DSP     0x03
#define SIM_PORT_STATE_USP     0x04
#define SIM_PORT_STATE_INVALID 0x0f
#define SIM_PORT_DEV_NONE      0x00
#define SIM_PORT_DEV_T3_SLD    0x04
#define SIM_PORT_MODE_68B_VH   0x02 /* connected device mode: 68B flit and VH */
#define SIM_LTSSM_DETECT       0x00
#define SIM_LTSSM_L0           0x04
#define SIM_LINK_PERST         (1u << 1) /* link state flags: PERST asserted */
#define SIM_LINK_PRSNT         (1u << 2) /* presence detect */
#define SIM_LINK_WIDTH         16
#define SIM_LINK_SPEEDS        0x1f /* 2.5 to 32 GT/s */
#define SIM_LINK_SPEED_MAX     5    /* 32 GT/s */

/* Physical Port Control port opcodes (CXL r3.1 Table 7-21). */
#define SIM_PPC_ASSERT_PERST   0x00
#define SIM_PPC_DEASSERT_PERST 0x01
#define SIM_PPC_RESET_PPB      0x02

struct sim_port {
	bool upstream;
	bool device; /* a device is attached */
	bool perst;  /* PERST asserted: held in reset, link down */
	uint8_t ltssm;
};

/* The buffers one tunnel level answers through: its target's mailbox size. */
struct sim_tunnel_bufs {
	uint32_t payload; /* the target's mailbox size */
	uint8_t *out;     /* payload bytes */
	uint8_t *msg;     /* CCI header + payload bytes */
};

/*
 * A multi-logical device (CXL r3.1 2.4): its FM-owned LD answers the
 * switch's tunnel (the LD FFFFh CCI) and tunnels on to its LDs by LD id,
 * each a memory device with its own mailbox and background operation.
 */
struct sim_mld {
	struct sim_cci cci; /* the FM-owned LD */
	unsigned n_lds;
	struct sim_memdev *lds[SIM_MLD_LDS_MAX];
	struct sim_tunnel_bufs bufs; /* for the LDs' answers */
};

struct sim_switch {
	struct sim_cci cci;
	unsigned n_ports;
	unsigned tunnel_port;
	unsigned mld_port; /* 0: no MLD */
	struct sim_port ports[SIM_SWITCH_PORTS_MAX];
	struct sim_memdev *ld;       /* the memory device behind tunnel_port */
	struct sim_mld *mld;         /* the MLD behind mld_port, or NULL */
	struct sim_tunnel_bufs bufs; /* for the answers of what is behind a port */
};

static struct sim_switch *sim_sw(struct sim_cci *cci)
{
	return cci->model;
}

/* Whether a port's link is up. */
static bool sim_port_linked(const struct sim_port *p)
{
	return p->upstream || (p->device && !p->perst);
}

/* Identify Switch Device (5100h), CXL r3.1 Table 7-17. */
static uint16_t sim_cmd_identify_switch(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_switch *sw = sim_sw(cci);
	uint8_t *o = r->out;
	uint16_t bound = 0;

	memset(o, 0, 0x49);
	o[0] = 0; /* ingress port: the upstream port the FM reached us on */
	o[2] = (uint8_t)sw->n_ports;
	o[3] = 1; /* one virtual CXL switch */
	for (unsigned i = 0; i < sw->n_ports; i++) {
		if (sim_port_linked(&sw->ports[i]))
			o[4 + i / 8] |= (uint8_t)(1u << (i % 8));
		if (!sw->ports[i].upstream && sw->ports[i].device)
			bound++;
	}
	o[0x24] = 0x01;                                      /* active VCS bitmask: VCS 0 */
	sim_put_le16(o + 0x44, (uint16_t)(sw->n_ports - 1)); /* one vPPB per downstream port */
	sim_put_le16(o + 0x46, bound);
	o[0x48] = 4; /* HDM decoders per upstream port */
	r->out_len = 0x49;
	return CXL_RC_SUCCESS;
}

/* Writes one port information block. */
static void sim_port_info(const struct sim_switch *sw, uint8_t id, uint8_t *b)
{
	const struct sim_port *p;
	uint16_t link = 0;
	bool up;

	memset(b, 0, SIM_PORT_INFO);
	b[0] = id;
	if (id >= sw->n_ports) {
		b[1] = SIM_PORT_STATE_INVALID; /* the other fields are undefined */
		return;
	}
	p = &sw->ports[id];
	up = sim_port_linked(p);
	b[1] = p->upstream ? SIM_PORT_STATE_USP : SIM_PORT_STATE_DSP;
	b[2] = up ? SIM_PORT_MODE_68B_VH : 0;
	b[4] = p->device ? SIM_PORT_DEV_T3_SLD : SIM_PORT_DEV_NONE;
	b[5] = 0x03; /* CXL 1.1 and 2.0 */
	b[6] = SIM_LINK_WIDTH;
	b[7] = up ? SIM_LINK_WIDTH : 0;
	b[8] = SIM_LINK_SPEEDS;
	b[9] = SIM_LINK_SPEED_MAX;
	b[10] = up ? SIM_LINK_SPEED_MAX : 0;
	b[11] = p->ltssm;
	b[12] = 0; /* first negotiated lane */
	if (p->perst)
		link |= SIM_LINK_PERST;
	if (p->device || p->upstream)
		link |= SIM_LINK_PRSNT;
	sim_put_le16(b + 13, link);
	b[15] = 0; /* supported LD count: single logical devices only */
}

/* Get Physical Port State (5101h): one block per requested port, CXL r3.1 Table 7-18. */
static uint16_t sim_cmd_port_state(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_switch *sw = sim_sw(cci);
	uint8_t n = r->in[0];

	if (r->in_len != 1u + n)
		return CXL_RC_INVALID_PAYLOAD_LENGTH;
	if (n == 0 || SIM_PORT_STATE_HEADER + (size_t)n * SIM_PORT_INFO > r->out_cap)
		return CXL_RC_INVALID_INPUT;
	memset(r->out, 0, SIM_PORT_STATE_HEADER);
	r->out[0] = n;
	for (unsigned i = 0; i < n; i++)
		sim_port_info(sw, r->in[1 + i], r->out + SIM_PORT_STATE_HEADER + i * SIM_PORT_INFO);
	r->out_len = SIM_PORT_STATE_HEADER + (size_t)n * SIM_PORT_INFO;
	return CXL_RC_SUCCESS;
}

/* Physical Port Control (5102h): PERST and PPB reset of a downstream port, Table 7-20. */
static uint16_t sim_cmd_port_control(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_switch *sw = sim_sw(cci);
	uint8_t id = r->in[0], op = r->in[1];
	struct sim_port *p;

	/* The upstream port carries this very CCI: resetting it is refused. */
	if (id >= sw->n_ports || sw->ports[id].upstream || op > SIM_PPC_RESET_PPB)
		return CXL_RC_INVALID_INPUT;
	p = &sw->ports[id];
	if (op == SIM_PPC_ASSERT_PERST)
		p->perst = true;
	else if (op == SIM_PPC_DEASSERT_PERST)
		p->perst = false;
	/* A PPB reset retrains the link; with PERST held it stays down. */
	p->ltssm = sim_port_linked(p) ? SIM_LTSSM_L0 : SIM_LTSSM_DETECT;
	return CXL_RC_SUCCESS;
}

/* Runs a decoded inner request on its target and encodes the CCI response. */
static int sim_tunnel_run(struct sim_cci *target, const struct sim_tunnel_bufs *b,
			  const struct cci_msg *req)
{
	struct sim_req ir = {
	    .opcode = req->opcode,
	    .in = req->payload,
	    .in_len = req->payload_len,
	    .out = b->out,
	    .out_cap = b->payload,
	};
	uint16_t rc = sim_dispatch(target, &ir);
	/* The background bit tells the requester the command goes on there (8.2.8.4.5). */
	struct cci_msg rep = {
	    .category = CCI_CATEGORY_RESPONSE,
	    .tag = req->tag,
	    .opcode = req->opcode,
	    .background = rc == CXL_RC_BACKGROUND_STARTED,
	    .rc = rc,
	    .payload = ir.out,
	    .payload_len = (uint32_t)ir.out_len,
	};

	return cci_encode(b->msg, CCI_HEADER_SIZE + b->payload, &rep);
}

/*
 * Tunnel Management (5300h), CXL r3.1 7.6.7.3.1: the inner request runs on
 * the target's own CCI (its own background operation, its own abort); the
 * tunnel itself succeeds and carries the target's answer, whatever it says.
 */
static uint16_t sim_tunnel_answer(struct sim_req *r, struct sim_cci *target,
				  const struct sim_tunnel_bufs *b, const struct cci_tunnel_req *t)
{
	struct cci_tunnel_rep rep;
	struct cci_msg req;
	int n;

	if (cci_decode(t->msg, t->msg_len, &req) < 0 || req.category != CCI_CATEGORY_REQUEST)
		return CXL_RC_INVALID_INPUT;
	n = sim_tunnel_run(target, b, &req);
	if (n < 0)
		return CXL_RC_INTERNAL_ERROR;
	rep.msg = b->msg;
	rep.msg_len = (uint16_t)n;
	n = cci_tunnel_rep_encode(r->out, r->out_cap, &rep);
	if (n < 0)
		return CXL_RC_INTERNAL_ERROR;
	r->out_len = (size_t)n;
	return CXL_RC_SUCCESS;
}

/* The CCI a switch tunnel reaches on a port: the SLD, the MLD's FM-owned LD, or none. */
static struct sim_cci *sim_port_target(struct sim_switch *sw, uint8_t port)
{
	if (port >= sw->n_ports || !sim_port_linked(&sw->ports[port]))
		return NULL;
	if (port == sw->tunnel_port)
		return sim_memdev_cci(sw->ld);
	return sw->mld && port == sw->mld_port ? &sw->mld->cci : NULL;
}

/* Tunnel Management Command (5300h) to the device on a port. */
static uint16_t sim_cmd_tunnel(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_switch *sw = sim_sw(cci);
	struct cci_tunnel_req t;
	struct sim_cci *target;

	/* Malformed framing, a wrong target or a response in place of a request. */
	if (cci_tunnel_req_decode(r->in, r->in_len, &t) < 0 ||
	    t.target_type != CCI_TUNNEL_TARGET_PORT_OR_LD ||
	    !(target = sim_port_target(sw, t.target)))
		return CXL_RC_INVALID_INPUT;
	return sim_tunnel_answer(r, target, &sw->bufs, &t);
}

/* Tunnel Management Command (5300h) from the MLD's FM-owned LD to one of its LDs. */
static uint16_t sim_mld_cmd_tunnel(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_mld *mld = cci->model;
	struct cci_tunnel_req t;

	if (cci_tunnel_req_decode(r->in, r->in_len, &t) < 0 ||
	    t.target_type != CCI_TUNNEL_TARGET_PORT_OR_LD || t.target >= mld->n_lds)
		return CXL_RC_INVALID_INPUT;
	return sim_tunnel_answer(r, sim_memdev_cci(mld->lds[t.target]), &mld->bufs, &t);
}

#define ANY UINT32_MAX

/*
 * Every command the switch CCI answers, in CEL order. Tunnel Management
 * reports no effects of its own: they are those of the inner command, which
 * the classifier decodes.
 */
static const struct sim_cmd sim_switch_cmds[] = {
    {0x0001, 0, 0, 0, 0, sim_cmd_identify},
    {0x0002, 0, 0, 0, 0, sim_cmd_bg_status},
    {0x0005, 0, 0, 0, 0, sim_cmd_request_abort},
    {0x0400, 0, 0, 0, 0, sim_cmd_supported_logs},
    {0x0401, 0, SIM_GET_LOG_IN_SIZE, SIM_GET_LOG_IN_SIZE, 0, sim_cmd_get_log},
    {0x5100, 0, 0, 0, 0, sim_cmd_identify_switch},
    {0x5101, 0, 1, 1 + 255, 0, sim_cmd_port_state},
    {0x5102, SIM_EFFECT_IMMEDIATE_CONFIG, 2, 2, 0, sim_cmd_port_control},
    {0x5300, 0, CCI_TUNNEL_REQ_HEADER + CCI_HEADER_SIZE, ANY, 0, sim_cmd_tunnel},
};

/* The FM-owned LD of the MLD: what every component answers, and the tunnel to its LDs. */
static const struct sim_cmd sim_mld_cmds[] = {
    {0x0001, 0, 0, 0, 0, sim_cmd_identify},
    {0x0002, 0, 0, 0, 0, sim_cmd_bg_status},
    {0x0005, 0, 0, 0, 0, sim_cmd_request_abort},
    {0x0400, 0, 0, 0, 0, sim_cmd_supported_logs},
    {0x0401, 0, SIM_GET_LOG_IN_SIZE, SIM_GET_LOG_IN_SIZE, 0, sim_cmd_get_log},
    {0x5300, 0, CCI_TUNNEL_REQ_HEADER + CCI_HEADER_SIZE, ANY, 0, sim_mld_cmd_tunnel},
};

#undef ANY

/* Allocates the buffers one tunnel level answers through; false when out of memory. */
static bool sim_tunnel_bufs_init(struct sim_tunnel_bufs *b, uint32_t payload)
{
	b->payload = payload;
	b->out = malloc(payload);
	b->msg = malloc(CCI_HEADER_SIZE + payload);
	return b->out && b->msg;
}

static void sim_tunnel_bufs_free(struct sim_tunnel_bufs *b)
{
	free(b->out);
	free(b->msg);
}

static void sim_mld_free(struct sim_mld *mld)
{
	if (!mld)
		return;
	for (unsigned i = 0; i < mld->n_lds; i++)
		sim_memdev_free(mld->lds[i]);
	sim_tunnel_bufs_free(&mld->bufs);
	free(mld);
}

/* Builds an MLD whose mailbox is payload bytes, with n LDs behind its FM-owned LD. */
static struct sim_mld *sim_mld_new(const struct sim_switch_config *cfg, uint32_t payload)
{
	struct sim_mld *mld = calloc(1, sizeof(*mld));
	struct sim_memdev_config mc = {.sanitize_ms = cfg->sanitize_ms};

	if (!mld)
		return NULL;
	mld->cci.cmds = sim_mld_cmds;
	mld->cci.n_cmds = sizeof(sim_mld_cmds) / sizeof(sim_mld_cmds[0]);
	mld->cci.ident = (struct sim_ident){
	    .vendor_id = SIM_SW_VENDOR,
	    .device_id = SIM_SW_DEVICE + 1,
	    .serial = cfg->serial + 0x10,
	    .component_type = SIM_COMPONENT_TYPE3,
	};
	mld->cci.payload_max = payload;
	mld->cci.model = mld;
	/* Half again: an LD's answer and its tunnel's 16 bytes fit the FM-owned LD's. */
	mc.payload_max = payload / 2;
	if (!sim_tunnel_bufs_init(&mld->bufs, mc.payload_max)) {
		sim_mld_free(mld);
		return NULL;
	}
	for (unsigned i = 0; i < cfg->ld_count && i < SIM_MLD_LDS_MAX; i++) {
		mc.serial = cfg->serial + 0x11 + i;
		mld->lds[i] = sim_memdev_new(&mc);
		if (!mld->lds[i]) {
			sim_mld_free(mld);
			return NULL;
		}
		mld->n_lds++;
	}
	return mld;
}

/* Sets up the ports: 0 upstream, tunnel_port with the memory device, the rest empty. */
static void sim_switch_ports(struct sim_switch *sw)
{
	for (unsigned i = 0; i < sw->n_ports; i++) {
		struct sim_port *p = &sw->ports[i];

		p->upstream = i == 0;
		p->device = i == sw->tunnel_port || (sw->mld_port && i == sw->mld_port);
		p->ltssm = sim_port_linked(p) ? SIM_LTSSM_L0 : SIM_LTSSM_DETECT;
	}
}

/* Builds a switch and the memory device behind it. */
struct sim_switch *sim_switch_new(const struct sim_switch_config *cfg)
{
	struct sim_switch *sw = calloc(1, sizeof(*sw));
	struct sim_memdev_config mc;
	uint32_t inner;

	if (!sw)
		return NULL;
	sw->cci.cmds = sim_switch_cmds;
	sw->cci.n_cmds = sizeof(sim_switch_cmds) / sizeof(sim_switch_cmds[0]);
	sw->cci.ident = (struct sim_ident){
	    .vendor_id = SIM_SW_VENDOR,
	    .device_id = SIM_SW_DEVICE,
	    .subsys_vendor_id = SIM_SW_VENDOR,
	    .subsys_id = SIM_SW_DEVICE,
	    .serial = cfg->serial,
	    .component_type = SIM_COMPONENT_SWITCH,
	};
	sw->cci.payload_max = cfg->payload_max;
	sw->cci.model = sw;
	sim_cci_set_cel_effects(&sw->cci, cfg->cel_effects, cfg->n_cel_effects);
	sw->n_ports = cfg->ports;
	sw->tunnel_port = cfg->tunnel_port;
	sw->mld_port = cfg->ld_count ? cfg->tunnel_port + 1 : 0;
	sim_switch_ports(sw);
	/* Half the switch's mailbox: the response and its 16 header bytes fit. */
	inner = cfg->payload_max / 2;
	if (inner > SIM_SW_INNER_PAYLOAD_MAX)
		inner = SIM_SW_INNER_PAYLOAD_MAX;
	mc = (struct sim_memdev_config){
	    .serial = cfg->serial + 1,
	    .payload_max = inner,
	    .sanitize_ms = cfg->sanitize_ms,
	};
	sw->ld = sim_memdev_new(&mc);
	if (cfg->ld_count)
		sw->mld = sim_mld_new(cfg, inner);
	if (!sw->ld || (cfg->ld_count && !sw->mld) || !sim_tunnel_bufs_init(&sw->bufs, inner)) {
		sim_switch_free(sw);
		return NULL;
	}
	return sw;
}

void sim_switch_free(struct sim_switch *sw)
{
	if (!sw)
		return;
	sim_memdev_free(sw->ld);
	sim_mld_free(sw->mld);
	sim_tunnel_bufs_free(&sw->bufs);
	free(sw);
}

/* Runs one command on the switch CCI. */
uint16_t sim_switch_run(struct sim_switch *sw, struct sim_req *r)
{
	return sim_dispatch(&sw->cci, r);
}
