/* pullback: logging to stderr or syslog.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "pullback";
static bool log_foreground = true;
static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
  [LOG_LEVEL_ERROR] = "error",
  [LOG_LEVEL_WARN] = "warn",
  [LOG_LEVEL_INFO] = "info",
  [LOG_LEVEL_DEBUG] = "debug",
};

static const int syslog_priority[] = {
  [LOG_LEVEL_ERROR] = LOG_ERR,
  [LOG_LEVEL_WARN] = LOG_WARNING,
  [LOG_LEVEL_INFO] = LOG_INFO,
  [LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

void
log_init (const char *ident, bool foreground, enum log_level level)
{
  log_ident = ident;
  log_foreground = foreground;
  log_level = level;
  if (!foreground)
    openlog (ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level (enum log_level level)
{
  log_level = level;
}

enum log_level
log_get_level (void)
{
  return log_level;
}

bool
log_debug_enabled (void)
{
  return log_level >= LOG_LEVEL_DEBUG;
}

int
log_level_from_string (const char *s)
{
  for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
    if (strcmp (s, level_names[i]) == 0)
      return (int)i;
  return -1;
}

const char *
log_level_to_string (enum log_level level)
{
  if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
    return "unknown";
  return level_names[level];
}

/* One line per message.  ERRNUM >= 0 appends ": strerror(errnum)".
 * The whole line is formatted first and written with one call so lines
 * from different threads do not interleave.
 */
static void
vlog (enum log_level level, int errnum, const char *fmt, va_list ap)
{
  char msg[4096];
  int n;

  if (level > log_level)
    return;

  n = vsnprintf (msg, sizeof msg, fmt, ap);
  if (n < 0)
    return;
  if (errnum >= 0 && (size_t)n < sizeof msg)
    snprintf (msg + n, sizeof msg - n, ": %s", strerror (errnum));

  if (log_foreground)
    fprintf (stderr, "%s: %s%s\n", log_ident,
             level == LOG_LEVEL_ERROR   ? "error: "
             : level == LOG_LEVEL_WARN  ? "warning: "
             : level == LOG_LEVEL_DEBUG ? "debug: "
                                        : "",
             msg);
  else
    syslog (syslog_priority[level], "%s", msg);
}

void
log_warn (const char *fmt, ...)
{
  int errnum = errno;
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_LEVEL_WARN, errnum, fmt, ap);
  va_end (ap);
  errno = errnum;
}

void
log_warnx (const char *fmt, ...)
{
  int errnum = errno;
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_LEVEL_WARN, -1, fmt, ap);
  va_end (ap);
  errno = errnum;
}

void
log_info (const char *fmt, ...)
{
  int errnum = errno;
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_LEVEL_INFO, -1, fmt, ap);
  va_end (ap);
  errno = errnum;
}

void
log_debug (const char *fmt, ...)
{
  int errnum = errno;
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_LEVEL_DEBUG, -1, fmt, ap);
  va_end (ap);
  errno = errnum;
}

void
fatal (const char *fmt, ...)
{
  int errnum = errno;
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_LEVEL_ERROR, errnum, fmt, ap);
  va_end (ap);
  exit (EXIT_FAILURE);
}

void
fatalx (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_LEVEL_ERROR, -1, fmt, ap);
  va_end (ap);
  exit (EXIT_FAILURE);
}
