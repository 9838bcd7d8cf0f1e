/* pullback: splitting a byte stream into QMP/QGA messages.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * QEMU ends every message with a newline ("\r\n").  Bytes arrive in
 * arbitrary pieces: a message may span several reads and one read may
 * hold several messages.  The framer buffers at most MAX bytes of one
 * unfinished message; a longer one is an error, never unbounded memory.
 *
 * The guest agent answers guest-sync-delimited with a 0xFF byte before
 * its reply; framer_expect_delimiter drops everything up to that byte.
 * A 0xFF at the start of a line is always dropped.
 */

#ifndef PULLBACK_QMP_FRAMER_H
#define PULLBACK_QMP_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct framer
{
  char *buf;
  size_t len;      /* bytes held */
  size_t cap;      /* allocated */
  size_t max;      /* longest message accepted, without its newline */
  size_t start;    /* where the unconsumed data begins */
  size_t scanned;  /* bytes after start known to hold no newline */
  bool want_delim; /* drop bytes until a 0xFF */
};

void framer_init (struct framer *f, size_t max);
void framer_free (struct framer *f);
void framer_reset (struct framer *f);

/* Room to read into: sets *AVAIL and returns where to write.  Returns
 * NULL (errno = ENOMEM) if memory cannot be had.
 */
char *framer_space (struct framer *f, size_t *avail);
/* N bytes were written into the space. */
void framer_commit (struct framer *f, size_t n);
/* Convenience for tests: copy LEN bytes in.  Returns -1 on ENOMEM. */
int framer_feed (struct framer *f, const char *data, size_t len);

/* The next complete, non-blank message: returns 1 and points *MSG at it
 * (NUL-terminated, without the line ending; valid until the next call),
 * 0 if more bytes are needed, or -1 if the pending message is longer
 * than MAX (errno = EMSGSIZE).
 */
int framer_next (struct framer *f, char **msg, size_t *len);

void framer_expect_delimiter (struct framer *f);

#endif /* PULLBACK_QMP_FRAMER_H */
