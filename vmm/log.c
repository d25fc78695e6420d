#include "vmm/log.h"

#include <stdarg.h>
#include <stdio.h>

int log_level = LOG_WARN;

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if ((int)lvl > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* One write so lines from different threads do not interleave.
	 * "\r\n" because the terminal may be in raw mode. */
	fprintf(stderr, "minivmm: %s\r\n", buf);
}
