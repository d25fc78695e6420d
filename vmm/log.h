/* Logging.  Everything goes to stderr with a "minivmm: " prefix so it is
 * distinguishable from the guest's serial output on stdout.
 *
 * Anything the GUEST can trigger must use log_guest(), which is rate limited
 * (a hostile guest must not be able to flood the host's log). */
#ifndef MINIVMM_LOG_H
#define MINIVMM_LOG_H

#include <stdatomic.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_level; /* messages above this level are dropped */

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* At most LOG_GUEST_BURST messages per call site, then one "suppressed"
 * note; guest-triggered paths must use this. */
#define LOG_GUEST_BURST 10
#define log_guest(...)                                                    \
	do {                                                              \
		static atomic_int log_guest_count_;                       \
		int n_ = atomic_fetch_add(&log_guest_count_, 1);          \
		if (n_ < LOG_GUEST_BURST)                                 \
			log_msg(LOG_WARN, __VA_ARGS__);                   \
		else if (n_ == LOG_GUEST_BURST)                           \
			log_msg(LOG_WARN, "(further messages from %s:%d suppressed)", \
				__FILE__, __LINE__);                      \
	} while (0)

#endif
