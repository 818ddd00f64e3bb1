/* Get Health Info (4200h): health and media status, life used, temperature, error counts. */
#include <errno.h>
#include <inttypes.h>

#include "decode.h"

/* Media status values, CXL r3.1 Table 8-133 byte 1. */
static const char *const decode_health_media_names[] = {
    "normal",
    "not ready",
    "write persistency lost",
    "all data lost",
    "write persistency loss in the event of power loss",
    "write persistency loss in the event of shutdown",
    "write persistency loss imminent",
    "all data loss in the event of power loss",
    "all data loss in the event of shutdown",
    "all data loss imminent",
};

/* Decodes Get Health Info. */
int decode_health_parse(const uint8_t *p, size_t len, struct decode_health *h)
{
	uint16_t t;

	if (!p || len < DECODE_HEALTH_SIZE)
		return -EPROTO;
	h->health_status = p[0];
	h->media_status = p[1];
	h->additional_status = p[2];
	h->life_used = p[3];
	t = decode_le16(p + 4);
	/* Two's complement degrees Celsius; FFFFh means the device does not report it. */
	h->temperature_known = t != DECODE_TEMP_UNKNOWN;
	h->temperature = (int16_t)t;
	h->dirty_shutdowns = decode_le32(p + 6);
	h->corrected_volatile = decode_le32(p + 10);
	h->corrected_persistent = decode_le32(p + 14);
	return 0;
}

/* Names a media status. */
const char *decode_health_media(uint8_t media_status)
{
	if (media_status < sizeof(decode_health_media_names) / sizeof(decode_health_media_names[0]))
		return decode_health_media_names[media_status];
	return "reserved value";
}

/*
 * Names one alert of the additional status byte: which 0 life used (bits
 * 1:0), 1 temperature (3:2), 2 corrected volatile errors (4), 3 corrected
 * persistent errors (5).
 */
const char *decode_health_alert(uint8_t additional_status, int which)
{
	static const char *const level[4] = {"normal", "warning", "critical", "reserved value"};

	switch (which) {
	case 0:
		return level[additional_status & 3];
	case 1:
		return level[(additional_status >> 2) & 3];
	case 2:
		return level[(additional_status >> 4) & 1];
	case 3:
		return level[(additional_status >> 5) & 1];
	default:
		return "unknown";
	}
}

/* Writes the health status bits as words. */
static void decode_health_status_words(uint8_t status, char *buf, size_t cap)
{
	static const char *const bits[] = {"maintenance needed", "performance degraded",
					   "hardware replacement needed"};
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < 3; i++)
		if (status & (1u << i) && used < cap)
			used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? ", " : "",
						 bits[i]);
	if (!buf[0])
		snprintf(buf, cap, "normal");
}

/* Prints Get Health Info for humans. */
void decode_health_print(FILE *f, const struct decode_health *h)
{
	char words[96];

	decode_health_status_words(h->health_status, words, sizeof(words));
	fprintf(f, "  health status:       %s\n", words);
	fprintf(f, "  media status:        %s\n", decode_health_media(h->media_status));
	if (h->life_used == DECODE_LIFE_UNKNOWN)
		fprintf(f, "  life used:           not reported\n");
	else
		fprintf(f, "  life used:           %u %% (%s)\n", h->life_used,
			decode_health_alert(h->additional_status, 0));
	if (h->temperature_known)
		fprintf(f, "  temperature:         %d \u00b0C (%s)\n", h->temperature,
			decode_health_alert(h->additional_status, 1));
	else
		fprintf(f, "  temperature:         not reported\n");
	fprintf(f, "  dirty shutdowns:     %" PRIu32 "\n", h->dirty_shutdowns);
	fprintf(f, "  corrected volatile errors:   %" PRIu32 " (%s)\n", h->corrected_volatile,
		decode_health_alert(h->additional_status, 2));
	fprintf(f, "  corrected persistent errors: %" PRIu32 " (%s)\n", h->corrected_persistent,
		decode_health_alert(h->additional_status, 3));
}

/* Get Health Info as JSON; unreported values are null. */
json_t *decode_health_json(const struct decode_health *h)
{
	return json_pack(
	    "{s:{s:b, s:b, s:b}, s:s, s:i, s:o, s:s, s:o, s:s, s:I, s:I, s:s, s:I, s:s}",
	    "health_status", "maintenance_needed", (h->health_status & 1) != 0,
	    "performance_degraded", (h->health_status & 2) != 0, "hardware_replacement_needed",
	    (h->health_status & 4) != 0, "media_status", decode_health_media(h->media_status),
	    "media_status_code", h->media_status, "life_used_percent",
	    h->life_used == DECODE_LIFE_UNKNOWN ? json_null() : json_integer(h->life_used),
	    "life_used_alert", decode_health_alert(h->additional_status, 0), "temperature_celsius",
	    h->temperature_known ? json_integer(h->temperature) : json_null(), "temperature_alert",
	    decode_health_alert(h->additional_status, 1), "dirty_shutdown_count",
	    (json_int_t)h->dirty_shutdowns, "corrected_volatile_errors",
	    (json_int_t)h->corrected_volatile, "corrected_volatile_alert",
	    decode_health_alert(h->additional_status, 2), "corrected_persistent_errors",
	    (json_int_t)h->corrected_persistent, "corrected_persistent_alert",
	    decode_health_alert(h->additional_status, 3));
}
