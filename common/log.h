/* pullback: logging.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Messages go to stderr while the program runs in the foreground and to
 * syslog otherwise.  log_warn and fatal append the text of errno, the
 * "x" variants do not (the OpenBSD daemon convention).
 */

#ifndef PULLBACK_LOG_H
#define PULLBACK_LOG_H

#include <stdbool.h>

enum log_level
{
  LOG_LEVEL_ERROR = 0,
  LOG_LEVEL_WARN,
  LOG_LEVEL_INFO,
  LOG_LEVEL_DEBUG,
};

/* IDENT prefixes every line; FOREGROUND selects stderr over syslog. */
void log_init (const char *ident, bool foreground, enum log_level level);
void log_set_level (enum log_level level);
enum log_level log_get_level (void);
bool log_debug_enabled (void);

/* Parse "error", "warn", "info" or "debug".  Returns -1 if unknown. */
int log_level_from_string (const char *s);
const char *log_level_to_string (enum log_level level);

#define LOG_PRINTF(a, b) __attribute__ ((format (printf, a, b)))

void log_warn (const char *fmt, ...) LOG_PRINTF (1, 2);
void log_warnx (const char *fmt, ...) LOG_PRINTF (1, 2);
void log_info (const char *fmt, ...) LOG_PRINTF (1, 2);
void log_debug (const char *fmt, ...) LOG_PRINTF (1, 2);
void fatal (const char *fmt, ...) LOG_PRINTF (1, 2) __attribute__ ((noreturn));
void fatalx (const char *fmt, ...) LOG_PRINTF (1, 2)
    __attribute__ ((noreturn));

#endif /* PULLBACK_LOG_H */
