/* pullback: the growable array.
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <criterion/criterion.h>

#include "vector.h"

DEFINE_VECTOR_TYPE (int_vector, int)

Test (vector, append_many)
{
  int_vector v = empty_vector;

  for (int i = 0; i < 100000; i++)
    cr_assert_eq (int_vector_append (&v, i), 0);
  cr_assert_eq (v.len, 100000);
  cr_assert_geq (v.cap, v.len);
  for (int i = 0; i < 100000; i++)
    cr_assert_eq (v.ptr[i], i);
  int_vector_reset (&v);
  cr_assert_null (v.ptr);
  cr_assert_eq (v.len, 0);
  cr_assert_eq (v.cap, 0);
}

Test (vector, remove_keeps_order)
{
  int_vector v = empty_vector;
  static const int want[] = { 1, 2, 4, 5, 6, 7, 8 };

  for (int i = 0; i < 10; i++)
    int_vector_append (&v, i);
  int_vector_remove (&v, 0); /* front */
  int_vector_remove (&v, 8); /* back: 9 */
  int_vector_remove (&v, 2); /* middle: 3 */
  cr_assert_eq (v.len, 7);
  for (size_t i = 0; i < v.len; i++)
    cr_assert_eq (v.ptr[i], want[i]);
  int_vector_reset (&v);
}

static int sum;
static void
add (int x)
{
  sum += x;
}

Test (vector, iter)
{
  int_vector v = empty_vector;

  for (int i = 1; i <= 10; i++)
    int_vector_append (&v, i);
  int_vector_iter (&v, add);
  cr_assert_eq (sum, 55);
  int_vector_reset (&v);
}

Test (vector, reserve_overflow)
{
  int_vector v = empty_vector;

  cr_assert_eq (int_vector_reserve (&v, SIZE_MAX / 2), -1);
  cr_assert_eq (errno, ENOMEM);
  cr_assert_eq (v.len, 0);
  cr_assert_eq (int_vector_reserve (&v, 10), 0);
  cr_assert_geq (v.cap, 10);
  int_vector_reset (&v);
}
