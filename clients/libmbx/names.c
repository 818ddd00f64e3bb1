/* Names of the protocol's enumerations, for humans and for JSON. */
#include <string.h>

#include <mbx/proto.h>

static const char *const status_names[MBX_STATUS_COUNT] = {
    [MBX_STATUS_OK] = "ok",
    [MBX_STATUS_DENIED] = "denied",
    [MBX_STATUS_INVALID] = "invalid",
    [MBX_STATUS_BUSY] = "busy",
    [MBX_STATUS_TIMEOUT] = "timeout",
    [MBX_STATUS_DEVICE_ERROR] = "device-error",
    [MBX_STATUS_NO_DEVICE] = "no-such-device",
    [MBX_STATUS_UNSUPPORTED] = "unsupported",
    [MBX_STATUS_AUDIT_UNAVAILABLE] = "audit-unavailable",
    [MBX_STATUS_RATE_LIMITED] = "rate-limited",
    [MBX_STATUS_SHUTTING_DOWN] = "shutting-down",
    [MBX_STATUS_KERNEL_OWNED] = "kernel-owned",
    [MBX_STATUS_RAW_DISABLED] = "raw-disabled",
    [MBX_STATUS_CANCELLED] = "cancelled",
};

static const char *const class_names[MBX_CLASS_COUNT] = {
    [MBX_CLASS_READ] = "read",     [MBX_CLASS_LOG] = "log",           [MBX_CLASS_CONFIG] = "config",
    [MBX_CLASS_DATA] = "data",     [MBX_CLASS_SECURITY] = "security", [MBX_CLASS_FABRIC] = "fabric",
    [MBX_CLASS_VENDOR] = "vendor",
};

static const char *const decision_names[] = {
    [MBX_DECISION_ALLOW] = "allow",
    [MBX_DECISION_DENY] = "deny",
    [MBX_DECISION_INVALID] = "invalid",
};

/* Names a broker status. */
const char *mbx_status_name(int status)
{
	if (status < 0 || status >= MBX_STATUS_COUNT)
		return "unknown";
	return status_names[status];
}

/* Names a class. */
const char *mbx_class_name(int cls)
{
	if (cls < 0 || cls >= MBX_CLASS_COUNT)
		return "unknown";
	return class_names[cls];
}

/* Names a decision. */
const char *mbx_decision_name(int decision)
{
	if (decision < 0 || decision > MBX_DECISION_INVALID)
		return "unknown";
	return decision_names[decision];
}

/* Looks a class up by its name. */
int mbx_class_from_name(const char *name)
{
	for (int i = 0; i < MBX_CLASS_COUNT; i++)
		if (strcmp(class_names[i], name) == 0)
			return i;
	return -1;
}
