/* pullback: splitting a byte stream into messages.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "framer.h"

static struct framer f;

static void
setup (void)
{
  framer_init (&f, 1024 * 1024);
}

static void
teardown (void)
{
  framer_free (&f);
}

TestSuite (framer, .init = setup, .fini = teardown);

static void
feed (const char *s)
{
  cr_assert_eq (framer_feed (&f, s, strlen (s)), 0);
}

/* The next message must be WANT. */
static void
next_is (const char *want)
{
  char *msg;
  size_t len;

  cr_assert_eq (framer_next (&f, &msg, &len), 1, "expected %s", want);
  cr_assert_eq (len, strlen (want));
  cr_assert_str_eq (msg, want);
}

static void
nothing_yet (void)
{
  char *msg;
  size_t len;

  cr_assert_eq (framer_next (&f, &msg, &len), 0);
}

Test (framer, one_byte_at_a_time)
{
  const char *text = "{\"return\": {}}\r\n{\"event\": \"X\"}\r\n";

  for (const char *p = text; *p; p++)
    {
      cr_assert_eq (framer_feed (&f, p, 1), 0);
      if (p[0] == '\n' && p - text < 20)
        next_is ("{\"return\": {}}");
    }
  next_is ("{\"event\": \"X\"}");
  nothing_yet ();
}

Test (framer, several_in_one_read)
{
  feed ("{\"a\":1}\n{\"b\":2}\r\n\r\n   \n{\"c\":3}\n{\"d\":");
  next_is ("{\"a\":1}");
  next_is ("{\"b\":2}");
  next_is ("{\"c\":3}");
  nothing_yet ();
  feed ("4}\n");
  next_is ("{\"d\":4}");
  nothing_yet ();
}

Test (framer, exactly_max_is_accepted)
{
  char *big = malloc (1024 * 1024 + 2);

  memset (big, 'x', 1024 * 1024);
  big[1024 * 1024] = '\n';
  big[1024 * 1024 + 1] = '\0';
  feed (big);
  {
    char *msg;
    size_t len;

    cr_assert_eq (framer_next (&f, &msg, &len), 1);
    cr_assert_eq (len, 1024 * 1024);
  }
  free (big);
}

Test (framer, too_long_is_an_error_with_bounded_memory)
{
  char chunk[65536];
  char *msg;
  size_t len;
  int r = 0;

  memset (chunk, 'y', sizeof chunk);
  /* 10 MiB without a newline, read the way conn.c reads. */
  for (int i = 0; i < 160 && r == 0; i++)
    {
      cr_assert_eq (framer_feed (&f, chunk, sizeof chunk), 0);
      r = framer_next (&f, &msg, &len);
      cr_assert_lt (f.cap, 1024 * 1024 + 3 * 65536, "buffer grew to %zu",
                    f.cap);
    }
  cr_assert_eq (r, -1);
  cr_assert_eq (errno, EMSGSIZE);
}

Test (framer, long_line_with_newline_is_an_error)
{
  char *big = malloc (1024 * 1024 + 100);

  memset (big, 'z', 1024 * 1024 + 98);
  big[1024 * 1024 + 98] = '\n';
  big[1024 * 1024 + 99] = '\0';
  feed (big);
  {
    char *msg;
    size_t len;

    cr_assert_eq (framer_next (&f, &msg, &len), -1);
    cr_assert_eq (errno, EMSGSIZE);
  }
  free (big);
}

Test (framer, delimiter_drops_stale_data)
{
  framer_expect_delimiter (&f);
  feed ("{\"return\": 1, \"id\": \"old\"}\n{\"error\": {}}\n");
  nothing_yet ();
  feed ("garbage \xff");
  feed ("{\"return\": 42}\n{\"next\": 1}\n");
  next_is ("{\"return\": 42}");
  next_is ("{\"next\": 1}");
}

Test (framer, delimiter_split_across_reads)
{
  framer_expect_delimiter (&f);
  feed ("stale stale");
  nothing_yet ();
  feed ("more stale");
  nothing_yet ();
  feed ("\xff{\"return\": ");
  nothing_yet ();
  feed ("7}\n");
  next_is ("{\"return\": 7}");
}

Test (framer, reset_forgets)
{
  feed ("{\"half\":");
  framer_reset (&f);
  feed ("{\"whole\":1}\n");
  next_is ("{\"whole\":1}");
}

Test (framer, leading_0xff_is_dropped)
{
  feed ("\xff{\"return\": 1}\r\n\xff\xff{\"a\":2}\n\xff\r\n{\"b\":3}\n");
  next_is ("{\"return\": 1}");
  next_is ("{\"a\":2}");
  next_is ("{\"b\":3}");
  nothing_yet ();
}

Test (framer, second_0xff_after_the_delimiter)
{
  /* A stale 0xFF (its reply lost) was taken as the delimiter. */
  framer_expect_delimiter (&f);
  feed ("stale\xff\xff{\"return\": 5}\n");
  next_is ("{\"return\": 5}");
}
