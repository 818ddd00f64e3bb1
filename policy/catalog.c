/*
 * The built-in opcode catalog (CXL r3.1/r3.2 Tables 8-37, 8-126, 8-164,
 * 8-215 as encoded in the Linux kernel's drivers/cxl, QEMU's
 * hw/cxl/cxl-mailbox-utils.c and libcxlmi).
 *
 * Classes follow docs/policy.md; input bounds come from the kernel's
 * cxl_mem_commands table and QEMU's command tables where they exist, from
 * the spec's payload layouts otherwise. Where no source fixes a size the
 * bounds are 0..variable and the device remains the judge. kernel_owned
 * marks what the kernel refuses on its RAW path (cxl_disabled_raw_commands
 * and the 44h-46h security command sets) or claims for itself while bound
 * (event records and interrupt policy, which the driver drains itself).
 */
#include <stdlib.h>

#include "catalog.h"

#define V CATALOG_SIZE_VARIABLE
#define R MBX_CLASS_READ
#define L MBX_CLASS_LOG
#define C MBX_CLASS_CONFIG
#define D MBX_CLASS_DATA
#define S MBX_CLASS_SECURITY
#define F MBX_CLASS_FABRIC

/* opcode, name, class, background, kernel-owned, min in, max in; sorted by opcode. */
static const struct catalog_entry catalog_table[] = {
    /* 00h Information and Status */
    {0x0001, "Identify", R, false, false, 0, 0},
    {0x0002, "Background Operation Status", R, false, false, 0, 0},
    {0x0003, "Get Response Message Limit", R, false, false, 0, 0},
    {0x0004, "Set Response Message Limit", C, false, false, 1, 1},
    /* The broker only lets a principal allowed the running operation abort it. */
    {0x0005, "Request Abort Background Operation", C, false, false, 0, 0},
    /* 01h Events */
    {0x0100, "Get Event Records", R, false, false, 1, 1},
    {0x0101, "Clear Event Records", L, false, true, 6, V},
    {0x0102, "Get Event Interrupt Policy", R, false, false, 0, 0},
    {0x0103, "Set Event Interrupt Policy", L, false, true, 4, 5},
    {0x0104, "Get MCTP Event Interrupt Policy", R, false, false, 0, 0},
    {0x0105, "Set MCTP Event Interrupt Policy", L, false, false, 2, 2},
    {0x0106, "Event Notification", L, false, false, 0, V},
    {0x0107, "GFD Enhanced Event Notification", L, false, false, 0, V},
    {0x0108, "GFD to GAE Enhanced Event Notification", L, false, false, 0, V},
    {0x0109, "Get GAM Buffer", R, false, false, 0, V},
    {0x010a, "Set GAM Buffer", C, false, false, 0, V},
    /* 02h Firmware Update */
    {0x0200, "Get FW Info", R, false, false, 0, 0},
    {0x0201, "Transfer FW", D, true, false, 128, V},
    {0x0202, "Activate FW", D, true, true, 2, 2},
    /* 03h Timestamp */
    {0x0300, "Get Timestamp", R, false, false, 0, 0},
    {0x0301, "Set Timestamp", C, false, false, 8, 8},
    /* 04h Logs */
    {0x0400, "Get Supported Logs", R, false, false, 0, 0},
    {0x0401, "Get Log", R, false, false, 24, 24},
    {0x0402, "Get Log Capabilities", R, false, false, 16, 16},
    {0x0403, "Clear Log", L, false, false, 16, 16},
    {0x0404, "Populate Log", C, true, false, 16, 16},
    {0x0405, "Get Supported Logs Sub-List", R, false, false, 2, 2},
    /* 05h Features: Set Feature is refined by the Feature's effects. */
    {0x0500, "Get Supported Features", R, false, false, 8, 8},
    {0x0501, "Get Feature", R, false, false, 21, 21},
    {0x0502, "Set Feature", D, false, false, 32, V},
    /* 06h Maintenance */
    {0x0600, "Perform Maintenance", D, true, false, 2, V},
    /* 07h PBR Components */
    {0x0700, "Identify PBR Component", R, false, false, 0, V},
    {0x0701, "Claim Ownership", F, false, false, 0, V},
    {0x0702, "Read CDAT", R, false, false, 0, V},
    /* 40h Identify Memory Device */
    {0x4000, "Identify Memory Device", R, false, false, 0, 0},
    /* 41h Capacity Configuration and Label Storage */
    {0x4100, "Get Partition Info", R, false, false, 0, 0},
    {0x4101, "Set Partition Info", D, false, true, 10, 10},
    {0x4102, "Get LSA", R, false, false, 8, 8},
    {0x4103, "Set LSA", D, false, true, 8, V},
    /* 42h Health Info and Alerts */
    {0x4200, "Get Health Info", R, false, false, 0, 0},
    {0x4201, "Get Alert Configuration", R, false, false, 0, 0},
    {0x4202, "Set Alert Configuration", C, false, false, 12, 12},
    {0x4203, "Get Shutdown State", R, false, false, 0, 0},
    {0x4204, "Set Shutdown State", C, false, true, 1, 1},
    /* 43h Media and Poison Management: QEMU reports effects 0 for poison. */
    {0x4300, "Get Poison List", R, false, true, 16, 16},
    {0x4301, "Inject Poison", D, false, true, 8, 8},
    {0x4302, "Clear Poison", D, false, true, 72, 72},
    {0x4303, "Get Scan Media Capabilities", R, false, false, 16, 16},
    {0x4304, "Scan Media", D, true, true, 17, 17},
    {0x4305, "Get Scan Media Results", R, false, true, 0, 0},
    /* 44h Sanitize and Media Operations: kernel refuses the whole set on RAW. */
    {0x4400, "Sanitize", D, true, true, 0, 0},
    {0x4401, "Secure Erase", D, false, true, 0, 0},
    {0x4402, "Media Operations", D, true, true, 8, V},
    /* 45h Persistent Memory Data-at-rest Security */
    {0x4500, "Get Security State", R, false, true, 0, 0},
    {0x4501, "Set Passphrase", S, false, true, 96, 96},
    {0x4502, "Disable Passphrase", S, false, true, 64, 64},
    {0x4503, "Unlock", S, false, true, 32, 32},
    {0x4504, "Freeze Security State", S, false, true, 0, 0},
    /* Also destroys data; security is the higher of the two. */
    {0x4505, "Passphrase Secure Erase", S, false, true, 64, 64},
    /* 46h Security Passthrough */
    {0x4600, "Security Send", S, false, true, 0, V},
    {0x4601, "Security Receive", S, false, true, 0, V},
    /* 47h SLD QoS Telemetry */
    {0x4700, "Get SLD QoS Control", R, false, false, 0, 0},
    {0x4701, "Set SLD QoS Control", C, false, false, 4, 4},
    {0x4702, "Get SLD QoS Status", R, false, false, 0, 0},
    /* 48h Dynamic Capacity */
    {0x4800, "Get Dynamic Capacity Configuration", R, false, false, 2, 2},
    {0x4801, "Get Dynamic Capacity Extent List", R, false, false, 8, 8},
    {0x4802, "Add Dynamic Capacity Response", D, false, false, 8, V},
    {0x4803, "Release Dynamic Capacity", D, false, false, 8, V},
    /* 49h GFD: global fabric-attached memory shared between hosts. */
    {0x4900, "Identify GFD", R, false, false, 0, V},
    {0x4901, "Get GFD Status", R, false, false, 0, V},
    {0x4902, "Get GFD DC Region Configuration", R, false, false, 0, V},
    {0x4903, "Set GFD DC Region Configuration", F, false, false, 0, V},
    {0x4904, "Get GFD DC Region Extent Lists", R, false, false, 0, V},
    {0x4905, "Get GFD DMP Configuration", R, false, false, 0, V},
    {0x4906, "Set GFD DMP Configuration", F, false, false, 0, V},
    {0x4907, "GFD Dynamic Capacity Add", F, false, false, 0, V},
    {0x4908, "GFD Dynamic Capacity Release", F, false, false, 0, V},
    {0x4909, "GFD Dynamic Capacity Add Reference", F, false, false, 0, V},
    {0x490a, "GFD Dynamic Capacity Remove Reference", F, false, false, 0, V},
    {0x490b, "GFD Dynamic Capacity List Tags", R, false, false, 0, V},
    {0x490c, "Get GFD SAT Entry", R, false, false, 0, V},
    {0x490d, "Set GFD SAT Entry", F, false, false, 0, V},
    {0x490e, "Get GFD QoS Control", R, false, false, 0, V},
    {0x490f, "Set GFD QoS Control", F, false, false, 0, V},
    {0x4910, "Get GFD QoS Status", R, false, false, 0, V},
    {0x4911, "Get GFD QoS BW Limit", R, false, false, 0, V},
    {0x4912, "Set GFD QoS BW Limit", F, false, false, 0, V},
    {0x4913, "Get GDT Configuration", R, false, false, 0, V},
    {0x4914, "Set GDT Configuration", F, false, false, 0, V},
    /* 51h Physical Switch (FM-API) */
    {0x5100, "Identify Switch Device", R, false, false, 0, 0},
    {0x5101, "Get Physical Port State", R, false, false, 1, 256},
    {0x5102, "Physical Port Control", F, false, false, 2, 2},
    {0x5103, "Send PPB CXL.io Configuration Request", F, false, false, 8, 8},
    {0x5104, "Get Domain Validation SV State", R, false, false, 0, 0},
    {0x5105, "Set Domain Validation SV", F, false, false, 16, 16},
    {0x5106, "Get VCS Domain Validation SV State", R, false, false, 1, 1},
    /* Returns the secret value itself: not a pure Get. */
    {0x5107, "Get Domain Validation SV", F, false, false, 1, 1},
    /* 52h Virtual Switch */
    {0x5200, "Get Virtual CXL Switch Info", R, false, false, 0, V},
    {0x5201, "Bind vPPB", F, true, false, 6, 6},
    {0x5202, "Unbind vPPB", F, true, false, 3, 3},
    {0x5203, "Generate AER Event", F, false, false, 0, V},
    /* 53h MLD Port: the tunnel's class is that of its most dangerous level. */
    {0x5300, "Tunnel Management Command", R, false, false, 16, V},
    {0x5301, "Send LD CXL.io Configuration Request", F, false, false, 12, 12},
    {0x5302, "Send LD CXL.io Memory Request", F, false, false, 0, V},
    /* 54h MLD Components */
    {0x5400, "Get LD Info", R, false, false, 0, 0},
    {0x5401, "Get LD Allocations", R, false, false, 2, 2},
    {0x5402, "Set LD Allocations", F, false, false, 4, V},
    {0x5403, "Get QoS Control", R, false, false, 0, 0},
    {0x5404, "Set QoS Control", F, false, false, 7, 7},
    {0x5405, "Get QoS Status", R, false, false, 0, 0},
    {0x5406, "Get QoS Allocated BW", R, false, false, 2, 2},
    {0x5407, "Set QoS Allocated BW", F, false, false, 2, V},
    {0x5408, "Get QoS BW Limit", R, false, false, 2, 2},
    {0x5409, "Set QoS BW Limit", F, false, false, 2, V},
    /* 55h Multi-Headed Devices */
    {0x5500, "Get Multi-Headed Info", R, false, false, 2, 2},
    {0x5501, "Get Head Info", R, false, false, 2, 2},
    /* 56h DCD Management */
    {0x5600, "Get DCD Info", R, false, false, 0, 0},
    {0x5601, "Get Host DC Region Configuration", R, false, false, 4, 4},
    {0x5602, "Set DC Region Configuration", F, false, false, 16, 16},
    {0x5603, "Get DC Region Extent Lists", R, false, false, 12, 12},
    {0x5604, "Initiate Dynamic Capacity Add", F, false, false, 32, V},
    /* Can force removal of memory from a running host. */
    {0x5605, "Initiate Dynamic Capacity Release", F, false, false, 32, V},
    {0x5606, "Dynamic Capacity Add Reference", F, false, false, 16, 16},
    {0x5607, "Dynamic Capacity Remove Reference", F, false, false, 16, 16},
    {0x5608, "Dynamic Capacity List Tags", R, false, false, 8, 8},
    /* 57h PBR Switch */
    {0x5700, "Identify PBR Switch", R, false, false, 0, V},
    {0x5701, "Fabric Crawl Out", F, false, false, 0, V},
    {0x5702, "Get PBR Link Partner Info", R, false, false, 0, V},
    {0x5703, "Get PID Target List", R, false, false, 0, V},
    {0x5704, "Configure PID Assignment", F, false, false, 0, V},
    {0x5705, "Get PID Binding", R, false, false, 0, V},
    {0x5706, "Configure PID Binding", F, false, false, 0, V},
    {0x5707, "Get Table Descriptors", R, false, false, 0, V},
    {0x5708, "Get DRT", R, false, false, 0, V},
    {0x5709, "Set DRT", F, false, false, 0, V},
    {0x570a, "Get RGT", R, false, false, 0, V},
    {0x570b, "Set RGT", F, false, false, 0, V},
    {0x570c, "Get LDST/IDT Capabilities", R, false, false, 0, V},
    {0x570d, "Set LDST/IDT Configuration", F, false, false, 0, V},
    {0x570e, "Get LDST Segment Entries", R, false, false, 0, V},
    {0x570f, "Set LDST Segment Entries", F, false, false, 0, V},
    {0x5710, "Get LDST IDT DPID Entries", R, false, false, 0, V},
    {0x5711, "Set LDST IDT DPID Entries", F, false, false, 0, V},
    {0x5712, "Get Completer ID-Based Re-Router Entries", R, false, false, 0, V},
    {0x5713, "Set Completer ID-Based Re-Router Entries", F, false, false, 0, V},
    {0x5714, "Get LDST Access Vector", R, false, false, 0, V},
    {0x5715, "Get VCS LDST Access Vector", R, false, false, 0, V},
    {0x5716, "Configure VCS LDST Access", F, false, false, 0, V},
    /* 58h Global Memory Access Endpoint */
    {0x5800, "Identify GAE", R, false, false, 0, V},
    {0x5801, "Get PID Interrupt Vector", R, false, false, 0, V},
    {0x5802, "Get PID Access Vectors", R, false, false, 0, V},
    {0x5803, "Get FAST/IDT Capabilities", R, false, false, 0, V},
    {0x5804, "Set FAST/IDT Configuration", F, false, false, 0, V},
    {0x5805, "Get FAST Segment Entries", R, false, false, 0, V},
    {0x5806, "Set FAST Segment Entries", F, false, false, 0, V},
    {0x5807, "Get IDT DPID Entries", R, false, false, 0, V},
    {0x5808, "Set IDT DPID Entries", F, false, false, 0, V},
    /* Carries another management command: never a pure Get. */
    {0x5809, "Proxy GFD Management Command", F, false, false, 0, V},
    {0x580a, "Get Proxy Thread Status", R, false, false, 0, V},
    {0x580b, "Cancel Proxy Thread", F, false, false, 0, V},
    /* 59h VCS GAE */
    {0x5900, "Identify VCS GAE", R, false, false, 0, V},
    {0x5901, "Get VCS PID Access Vectors", R, false, false, 0, V},
    {0x5902, "Configure VCS PID Access", F, false, false, 0, V},
    {0x5903, "Get VendPrefixL0 State", R, false, false, 0, V},
    {0x5904, "Set VendPrefixL0 State", F, false, false, 0, V},
};

#define CATALOG_N (sizeof(catalog_table) / sizeof(catalog_table[0]))

/* Orders entries by opcode for bsearch. */
static int catalog_cmp(const void *key, const void *elem)
{
	uint16_t op = *(const uint16_t *)key;
	const struct catalog_entry *e = elem;

	return (int)op - (int)e->opcode;
}

/* Finds an opcode's entry by binary search over the sorted table. */
const struct catalog_entry *catalog_lookup(uint16_t opcode)
{
	return bsearch(&opcode, catalog_table, CATALOG_N, sizeof(catalog_table[0]), catalog_cmp);
}

/* Counts the catalog's entries. */
size_t catalog_count(void)
{
	return CATALOG_N;
}

/* Returns entry i in opcode order, or NULL past the end. */
const struct catalog_entry *catalog_at(size_t i)
{
	return i < CATALOG_N ? &catalog_table[i] : NULL;
}

/* CXL r3.1 Table 8-34, indexed by return code. */
static const char *const cxl_rc_names[] = {
    [CXL_RC_SUCCESS] = "Success",
    [CXL_RC_BACKGROUND_STARTED] = "Background Command Started",
    [CXL_RC_INVALID_INPUT] = "Invalid Input",
    [CXL_RC_UNSUPPORTED] = "Unsupported",
    [CXL_RC_INTERNAL_ERROR] = "Internal Error",
    [CXL_RC_RETRY_REQUIRED] = "Retry Required",
    [CXL_RC_BUSY] = "Busy",
    [CXL_RC_MEDIA_DISABLED] = "Media Disabled",
    [CXL_RC_FW_TRANSFER_IN_PROGRESS] = "FW Transfer in Progress",
    [CXL_RC_FW_TRANSFER_OUT_OF_ORDER] = "FW Transfer Out of Order",
    [CXL_RC_FW_VERIFICATION_FAILED] = "FW Verification Failed",
    [CXL_RC_INVALID_SLOT] = "Invalid Slot",
    [CXL_RC_ACTIVATION_FAILED_ROLLED_BACK] = "Activation Failed, FW Rolled Back",
    [CXL_RC_ACTIVATION_FAILED_RESET] = "Activation Failed, Cold Reset Required",
    [CXL_RC_INVALID_HANDLE] = "Invalid Handle",
    [CXL_RC_INVALID_PHYSICAL_ADDRESS] = "Invalid Physical Address",
    [CXL_RC_INJECT_POISON_LIMIT] = "Inject Poison Limit Reached",
    [CXL_RC_PERMANENT_MEDIA_FAILURE] = "Permanent Media Failure",
    [CXL_RC_ABORTED] = "Aborted",
    [CXL_RC_INVALID_SECURITY_STATE] = "Invalid Security State",
    [CXL_RC_INCORRECT_PASSPHRASE] = "Incorrect Passphrase",
    [CXL_RC_UNSUPPORTED_MAILBOX] = "Unsupported Mailbox or CCI",
    [CXL_RC_INVALID_PAYLOAD_LENGTH] = "Invalid Payload Length",
    [0x17] = "Invalid Log",
    [0x18] = "Interrupted",
    [0x19] = "Unsupported Feature Version",
    [0x1a] = "Unsupported Feature Selection Value",
    [0x1b] = "Feature Transfer in Progress",
    [0x1c] = "Feature Transfer Out of Order",
    [0x1d] = "Resources Exhausted",
    [0x1e] = "Invalid Extent List",
    [0x1f] = "Transfer Out of Order",
    [0x20] = "Request Abort Not Supported",
};

/* Names a CXL return code; unknown codes are named as such. */
const char *cxl_rc_name(uint16_t rc)
{
	if (rc >= sizeof(cxl_rc_names) / sizeof(cxl_rc_names[0]) || !cxl_rc_names[rc])
		return "Unknown Return Code";
	return cxl_rc_names[rc];
}
