/*
 * The classifier: what a command does to the world. A level's class is the
 * maximum of the catalog, the policy's override, the device's CEL effects,
 * the Set Feature effects of the Feature it writes and the FM-API floor;
 * every source goes through classify_raise(), so none can lower another.
 * Tunnels are followed recursively and the request's class is the maximum
 * of its levels. Payload lengths are checked against the catalog at every
 * level, so nothing malformed is ever forwarded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/strcopy.h>

#include "cci.h"
#include "policy-internal.h"

#define FM_API_SET_FIRST 0x51
#define FM_API_SET_LAST  0x59

/* Orders overrides by opcode for bsearch. */
static int classify_ovr_cmp(const void *key, const void *elem)
{
	return (int)*(const uint16_t *)key - (int)((const struct policy_override *)elem)->opcode;
}

/* Finds the policy's `opcodes:` entry for an opcode, or NULL. */
const struct policy_override *policy_classify_override(const struct policy *p, uint16_t opcode)
{
	if (!p || p->n_ovr == 0)
		return NULL;
	return bsearch(&opcode, p->ovr, p->n_ovr, sizeof(*p->ovr), classify_ovr_cmp);
}

/* Keeps the more dangerous of two classes (vendor counts as the most). */
static enum mbx_class classify_max(enum mbx_class a, enum mbx_class b)
{
	return a > b ? a : b;
}

/*
 * Returns the class from the catalog and the overrides alone: an override
 * names the class of an opcode the catalog does not know, and can only raise
 * one it does (the loader refuses a lower one; the maximum makes sure).
 */
enum mbx_class policy_classify_base(const struct policy *p, uint16_t opcode)
{
	const struct policy_override *o = policy_classify_override(p, opcode);
	const struct catalog_entry *e = catalog_lookup(opcode);

	if (o && e)
		return classify_max(o->cls, e->cls);
	if (o)
		return o->cls;
	return e ? e->cls : MBX_CLASS_VENDOR;
}

/* The one way a level's class changes once set from the catalog: upwards. */
static void classify_raise(struct policy_level *lv, enum mbx_class cls)
{
	lv->cls = classify_max(lv->cls, cls);
}

/* Marks the request invalid with a sentence saying why. */
static void classify_fail(struct policy_class *out, enum mbx_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void classify_fail(struct policy_class *out, enum mbx_status st, const char *fmt, ...)
{
	va_list ap;

	if (out->status != MBX_STATUS_OK)
		return; /* the first problem found is the one reported */
	out->status = st;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
}

/*
 * Records what the device says against the request (not supported, owned by
 * the kernel, larger than its mailbox), kept apart from faults of the request
 * itself: the policy is decided first, so only someone it would allow learns
 * what the device supports.
 */
static void classify_device_fail(struct policy_class *out, enum mbx_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void classify_device_fail(struct policy_class *out, enum mbx_status st, const char *fmt, ...)
{
	va_list ap;

	if (out->dev_status != MBX_STATUS_OK)
		return;
	out->dev_status = st;
	va_start(ap, fmt);
	vsnprintf(out->dev_message, sizeof(out->dev_message), fmt, ap);
	va_end(ap);
}

/* Names an opcode: the override's name, the catalog's, or a neutral one. */
static void classify_name(const struct policy *p, uint16_t opcode, char *buf, size_t cap)
{
	const struct policy_override *o = policy_classify_override(p, opcode);
	const struct catalog_entry *e = catalog_lookup(opcode);

	if (o && o->name[0])
		mbx_strcopy(buf, cap, o->name);
	else if (e)
		mbx_strcopy(buf, cap, e->name);
	else if (opcode >= 0xc000)
		snprintf(buf, cap, "Vendor Command %04Xh", opcode);
	else
		snprintf(buf, cap, "Unknown Command %04Xh", opcode);
}

/* Names an opcode for people (public wrapper). */
void policy_opcode_name(const struct policy *p, uint16_t opcode, char *buf, size_t cap)
{
	if (cap)
		classify_name(p, opcode, buf, cap);
}

/* Checks an input length against the catalog's bounds for the opcode. */
static bool classify_bounds(const struct catalog_entry *e, const struct policy_level *lv,
			    size_t len, struct policy_class *out)
{
	if (!e || (len >= e->min_in && (e->max_in == CATALOG_SIZE_VARIABLE || len <= e->max_in)))
		return true;
	if (e->min_in == e->max_in)
		classify_fail(out, MBX_STATUS_INVALID,
			      "%s (0x%04x) takes %u bytes of input, not %zu", lv->name, lv->opcode,
			      e->min_in, len);
	else if (e->max_in == CATALOG_SIZE_VARIABLE)
		classify_fail(out, MBX_STATUS_INVALID,
			      "%s (0x%04x) takes at least %u bytes of input, not %zu", lv->name,
			      lv->opcode, e->min_in, len);
	else
		classify_fail(out, MBX_STATUS_INVALID,
			      "%s (0x%04x) takes %u to %u bytes of input, not %zu", lv->name,
			      lv->opcode, e->min_in, e->max_in, len);
	return false;
}

/* FM-API sets never fall below fabric, except their pure Get/Identify commands. */
static enum mbx_class classify_fm_floor(uint16_t opcode)
{
	const struct catalog_entry *e = catalog_lookup(opcode);
	unsigned set = opcode >> 8;

	if (set < FM_API_SET_FIRST || set > FM_API_SET_LAST)
		return MBX_CLASS_READ;
	if (e && e->cls == MBX_CLASS_READ)
		return MBX_CLASS_READ; /* the catalog marks pure Get/Identify commands read */
	return MBX_CLASS_FABRIC;
}

/* The class of an opcode from the catalog, its override and the FM-API floor. */
enum mbx_class policy_opcode_class(const struct policy *p, uint16_t opcode)
{
	struct policy_level lv = {.cls = policy_classify_base(p, opcode)};

	classify_raise(&lv, classify_fm_floor(opcode));
	return lv.cls;
}

/* Classifies one level by catalog, overrides and floor; checks its length. */
static bool classify_level(const struct policy *p, struct policy_level *lv, size_t len,
			   struct policy_class *out)
{
	const struct catalog_entry *e = catalog_lookup(lv->opcode);

	classify_name(p, lv->opcode, lv->name, sizeof(lv->name));
	lv->cls = policy_classify_base(p, lv->opcode);
	classify_raise(lv, classify_fm_floor(lv->opcode));
	if (e && e->background)
		out->background = true;
	return classify_bounds(e, lv, len, out);
}

/* Decodes one tunnel payload and classifies what it carries, recursively. */
static void classify_tunnel(const struct policy *p, const uint8_t *in, size_t len,
			    struct policy_class *out)
{
	struct cci_tunnel_req t;
	struct cci_msg m;
	struct policy_level *lv;

	if (out->n_levels >= 1 + POLICY_TUNNEL_DEPTH_MAX) {
		classify_fail(out, MBX_STATUS_INVALID,
			      "tunnels nested deeper than %d levels are refused",
			      POLICY_TUNNEL_DEPTH_MAX);
		return;
	}
	if (cci_tunnel_req_decode(in, len, &t) < 0) {
		classify_fail(out, MBX_STATUS_INVALID,
			      "Tunnel Management payload at level %zu is truncated or its size "
			      "field disagrees with its %zu bytes",
			      out->n_levels, len);
		return;
	}
	if (t.target_type > CCI_TUNNEL_TARGET_LD_POOL) {
		classify_fail(out, MBX_STATUS_INVALID,
			      "Tunnel Management at level %zu names reserved target type %u",
			      out->n_levels, t.target_type);
		return;
	}
	if (cci_decode(t.msg, t.msg_len, &m) < 0) {
		classify_fail(out, MBX_STATUS_INVALID,
			      "tunnelled CCI message at level %zu is malformed: its length field "
			      "disagrees with the %u bytes it came in",
			      out->n_levels, t.msg_len);
		return;
	}
	if (m.reserved) {
		classify_fail(out, MBX_STATUS_INVALID,
			      "tunnelled CCI message at level %zu sets reserved header bits",
			      out->n_levels);
		return;
	}
	/* A request carries no status: anything else there is smuggled or broken. */
	if (m.category != CCI_CATEGORY_REQUEST || m.rc || m.vendor_status || m.background) {
		classify_fail(out, MBX_STATUS_INVALID,
			      "tunnelled CCI message at level %zu is not a well-formed request",
			      out->n_levels);
		return;
	}
	lv = &out->level[out->n_levels++];
	lv->opcode = m.opcode;
	lv->target = t.target;
	lv->target_type = t.target_type;
	if (!classify_level(p, lv, m.payload_len, out))
		return;
	out->cls = classify_max(out->cls, lv->cls);
	if (m.opcode == CXL_OP_TUNNEL)
		classify_tunnel(p, m.payload, m.payload_len, out);
}

/* Whether the device's transport carries this kernel-owned opcode by a kernel route. */
static bool classify_routed(const struct policy_device *dev, uint16_t opcode)
{
	if (!dev->kernel_owned)
		return false;
	for (size_t i = 0; i < dev->n_routed; i++)
		if (dev->routed[i] == opcode)
			return true;
	return false;
}

/* Raises the request's class by the device's reported effects; never lowers it. */
static void classify_cel(const struct policy_device *dev, struct policy_level *lv,
			 struct policy_class *out)
{
	const struct cel_entry *ce = policy_cel_find(dev->cel, dev->n_cel, lv->opcode);
	int ec;

	/*
	 * A routed opcode the CEL lacks keeps its catalog class: the kernel
	 * offers the route only for devices that list it, and the transport
	 * names the missing route, which says more than "not supported".
	 */
	if (!ce && classify_routed(dev, lv->opcode))
		return;
	if (!ce) {
		classify_device_fail(
		    out, MBX_STATUS_UNSUPPORTED,
		    "%s (0x%04x) is not supported by this device (its Command Effects "
		    "Log does not list it)",
		    lv->name, lv->opcode);
		return;
	}
	if (ce->effects & CEL_BACKGROUND)
		out->background = true;
	/* Effects the spec has not defined mean an uncatalogued opcode is unknown. */
	if ((ce->effects & ~CEL_KNOWN_MASK) && !catalog_lookup(lv->opcode)) {
		classify_raise(lv, MBX_CLASS_VENDOR);
		return;
	}
	ec = policy_cel_effects_class(ce->effects);
	if (ec >= 0)
		classify_raise(lv, (enum mbx_class)ec);
}

/*
 * The class the device's Features call for when Set Feature writes the one
 * whose UUID starts the payload: the maximum over every entry with that UUID
 * (a device that lists a Feature twice gets the more dangerous reading), at
 * least config (writing a Feature configures the device), vendor when the
 * device did not describe it.
 */
static enum mbx_class classify_feature(const struct policy_device *dev, const uint8_t *payload)
{
	enum mbx_class cls = MBX_CLASS_READ;
	bool found = false;
	int ec;

	for (size_t i = 0; i < dev->n_features; i++) {
		if (memcmp(dev->features[i].uuid, payload, 16) != 0)
			continue;
		found = true;
		ec = policy_cel_effects_class(dev->features[i].set_effects);
		cls = classify_max(cls, ec < 0 ? MBX_CLASS_CONFIG : (enum mbx_class)ec);
	}
	return found ? classify_max(cls, MBX_CLASS_CONFIG) : MBX_CLASS_VENDOR;
}

/* Applies what the device itself says: CEL, Features, kernel ownership; each only raises. */
static void classify_device(const struct policy_device *dev, const uint8_t *payload,
			    struct policy_class *out)
{
	struct policy_level *lv = &out->level[0];
	const struct catalog_entry *e = catalog_lookup(lv->opcode);

	if (lv->opcode == CXL_OP_SET_FEATURE && dev->have_features)
		classify_raise(lv, classify_feature(dev, payload));
	if (dev->have_cel)
		classify_cel(dev, lv, out);
	if (dev->kernel_owned && e && e->kernel_owned && !classify_routed(dev, lv->opcode))
		classify_device_fail(
		    out, MBX_STATUS_KERNEL_OWNED,
		    "%s (0x%04x) is reserved by the kernel's CXL driver, which owns "
		    "this device",
		    lv->name, lv->opcode);
}

/* Classifies a request; out->status says whether it may be decided at all. */
void policy_classify(const struct policy *p, const struct policy_device *dev, uint16_t opcode,
		     const uint8_t *payload, size_t len, struct policy_class *out)
{
	struct policy_level *lv = &out->level[0];

	memset(out, 0, sizeof(*out));
	out->status = MBX_STATUS_OK;
	out->n_levels = 1;
	lv->opcode = opcode;
	if (!classify_level(p, lv, len, out))
		goto out;
	if (dev && dev->payload_max && len > dev->payload_max)
		classify_device_fail(out, MBX_STATUS_INVALID,
				     "%zu bytes of input exceed the %u-byte mailbox of %s", len,
				     dev->payload_max, dev->name ? dev->name : "the device");
	if (dev)
		classify_device(dev, payload, out);
	out->cls = lv->cls;
	if (opcode == CXL_OP_TUNNEL && out->status == MBX_STATUS_OK)
		classify_tunnel(p, payload, len, out);
out:
	if (out->cls < lv->cls)
		out->cls = lv->cls;
}
