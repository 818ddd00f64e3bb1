/*
 * libFuzzer target: the response check the mctp transport puts in front of
 * every device answer (cci_response_match in transports/cci.c). The first
 * byte picks the request it is matched against: bit 0 set uses the next
 * three bytes as tag and opcode, clear uses the message's own (so the
 * accepting path is reached as often as the refusing ones). Whatever is
 * accepted must be exactly the request's answer and fill the bytes exactly;
 * whatever is refused must say why, and only when it carries the tag.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks an accepted answer against its bytes and the request. */
static void fuzz_accepted(const uint8_t *buf, size_t len, uint8_t tag, uint16_t opcode,
			  const struct cci_msg *m)
{
	uint16_t rc = (uint16_t)(buf[8] | buf[9] << 8);

	if (len < CCI_HEADER_SIZE || m->tag != tag || m->opcode != opcode ||
	    m->category != CCI_CATEGORY_RESPONSE || m->payload_len != len - CCI_HEADER_SIZE ||
	    (m->payload_len && m->payload != buf + CCI_HEADER_SIZE))
		abort();
	/* The background bit turns Success into Background Command Started, nothing else. */
	if (m->background && (rc == 0 || rc == 1) ? m->rc != 1 : m->rc != rc)
		abort();
}

/* Checks a refusal: the tag decides between "not ours" and "ours but broken". */
static void fuzz_refused(const uint8_t *buf, size_t len, uint8_t tag, enum cci_match r,
			 const char *why)
{
	bool ours = len >= 2 && buf[1] == tag && (buf[0] & 0x0f) != CCI_CATEGORY_REQUEST;

	if (r == CCI_MATCH_MALFORMED && (!ours || !why || !why[0]))
		abort();
	if (r == CCI_MATCH_OTHER && ours)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *buf;
	size_t len, skip;
	uint8_t tag = 0;
	uint16_t opcode = 0;
	struct cci_msg m;
	const char *why = NULL;
	enum cci_match r;

	if (size < 1)
		return 0;
	skip = (data[0] & 1) ? 4 : 1;
	if (size < skip)
		return 0;
	buf = data + skip;
	len = size - skip;
	if (data[0] & 1) {
		tag = data[1];
		opcode = (uint16_t)(data[2] | data[3] << 8);
	} else if (len >= 5) {
		tag = buf[1];
		opcode = (uint16_t)(buf[3] | buf[4] << 8);
	}
	memset(&m, 0, sizeof(m));
	r = cci_response_match(buf, len, tag, opcode, &m, &why);
	if (r == CCI_MATCH_OK)
		fuzz_accepted(buf, len, tag, opcode, &m);
	else if (r == CCI_MATCH_OTHER || r == CCI_MATCH_MALFORMED)
		fuzz_refused(buf, len, tag, r, why);
	else
		abort();
	return 0;
}
