/* pullback: UTF-8 checks.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <string.h>

#include <criterion/criterion.h>

#include "utf8.h"

#define V(s) utf8_valid ((s), sizeof (s) - 1)

Test (utf8, valid)
{
  cr_expect (V (""));
  cr_expect (V ("plain ascii"));
  cr_expect (V ("caf\xc3\xa9"));
  cr_expect (V ("\xe2\x82\xac"));     /* U+20AC */
  cr_expect (V ("\xf0\x9f\x98\x80")); /* U+1F600 */
  cr_expect (V ("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
  cr_expect (V ("\xed\x9f\xbf"));     /* U+D7FF */
  cr_expect (V ("nul\0inside"));      /* valid, not printable */
}

Test (utf8, invalid)
{
  cr_expect_not (V ("\xc3\x28")); /* bad continuation */
  cr_expect_not (V ("\xff"));
  cr_expect_not (V ("\xc3"));             /* truncated */
  cr_expect_not (V ("\xe2\x82"));         /* truncated */
  cr_expect_not (V ("\xc0\xaf"));         /* overlong '/' */
  cr_expect_not (V ("\xe0\x80\xaf"));     /* overlong '/' */
  cr_expect_not (V ("\xed\xa0\x80"));     /* surrogate */
  cr_expect_not (V ("\xf4\x90\x80\x80")); /* above U+10FFFF */
  cr_expect_not (V ("\x80"));             /* lone continuation */
}

Test (utf8, printable)
{
  cr_expect (utf8_printable ("vm1", 3));
  cr_expect (utf8_printable ("caf\xc3\xa9", 5));
  cr_expect_not (utf8_printable ("vm2\0", 4));
  cr_expect_not (utf8_printable ("a\x01", 2));
  cr_expect_not (utf8_printable ("a\x7f", 2));
  cr_expect_not (utf8_printable ("a\n", 2));
  cr_expect_not (utf8_printable ("\xff", 1));
}

Test (utf8, sanitize)
{
  char out[16];

  cr_expect_str_eq (utf8_sanitize ("ok", out, sizeof out), "ok");
  cr_expect_str_eq (utf8_sanitize ("a\xffz", out, sizeof out),
                    "a\xef\xbf\xbdz");
  cr_expect_str_eq (utf8_sanitize ("\xc3\x28", out, sizeof out),
                    "\xef\xbf\xbd(");
  /* Cut between characters, never inside one. */
  cr_expect_str_eq (utf8_sanitize ("abc\xe2\x82\xac", out, 6), "abc");
  cr_expect_str_eq (utf8_sanitize ("abc\xe2\x82\xac", out, 7),
                    "abc\xe2\x82\xac");
  cr_expect (utf8_valid (out, strlen (out)));
}
