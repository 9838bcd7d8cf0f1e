/* pullback: a small growable array.
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * DEFINE_VECTOR_TYPE (string_vector, char *) declares
 *
 *   typedef struct { char **ptr; size_t len, cap; } string_vector;
 *
 * with string_vector_append (&v, elem) (returns -1 with errno = ENOMEM),
 * string_vector_remove (&v, i), string_vector_reset (&v) (frees the array,
 * not the elements) and string_vector_iter (&v, fn) (calls fn on each
 * element, e.g. free).  Initialise with "= empty_vector".
 */

#ifndef PULLBACK_VECTOR_H
#define PULLBACK_VECTOR_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define empty_vector                                                          \
  {                                                                           \
    .ptr = NULL, .len = 0, .cap = 0                                           \
  }

#define DEFINE_VECTOR_TYPE(name, type)                                        \
  typedef struct                                                              \
  {                                                                           \
    type *ptr;                                                                \
    size_t len;                                                               \
    size_t cap;                                                               \
  } name;                                                                     \
                                                                              \
  static inline                                                               \
      __attribute__ ((__unused__)) int name##_reserve (name *v, size_t n)     \
  {                                                                           \
    size_t newcap;                                                            \
    type *p;                                                                  \
    if (v->cap - v->len >= n)                                                 \
      return 0;                                                               \
    if (n > SIZE_MAX / sizeof (type) - v->len)                                \
      {                                                                       \
        errno = ENOMEM;                                                       \
        return -1;                                                            \
      }                                                                       \
    newcap = v->cap ? v->cap : 4;                                             \
    while (newcap - v->len < n)                                               \
      {                                                                       \
        if (newcap > SIZE_MAX / sizeof (type) / 2)                            \
          {                                                                   \
            newcap = v->len + n;                                              \
            break;                                                            \
          }                                                                   \
        newcap *= 2;                                                          \
      }                                                                       \
    p = realloc (v->ptr, newcap * sizeof (type));                             \
    if (p == NULL)                                                            \
      return -1;                                                              \
    v->ptr = p;                                                               \
    v->cap = newcap;                                                          \
    return 0;                                                                 \
  }                                                                           \
                                                                              \
  static inline                                                               \
      __attribute__ ((__unused__)) int name##_append (name *v, type elem)     \
  {                                                                           \
    if (name##_reserve (v, 1) == -1)                                          \
      return -1;                                                              \
    v->ptr[v->len++] = elem;                                                  \
    return 0;                                                                 \
  }                                                                           \
                                                                              \
  static inline                                                               \
      __attribute__ ((__unused__)) void name##_remove (name *v, size_t i)     \
  {                                                                           \
    memmove (&v->ptr[i], &v->ptr[i + 1], (v->len - i - 1) * sizeof (type));   \
    v->len--;                                                                 \
  }                                                                           \
                                                                              \
  static inline __attribute__ ((__unused__)) void name##_reset (name *v)      \
  {                                                                           \
    free (v->ptr);                                                            \
    v->ptr = NULL;                                                            \
    v->len = v->cap = 0;                                                      \
  }                                                                           \
                                                                              \
  static inline __attribute__ ((__unused__)) void name##_iter (               \
      name *v, void (*f) (type elem))                                         \
  {                                                                           \
    for (size_t i = 0; i < v->len; i++)                                       \
      f (v->ptr[i]);                                                          \
  }

#endif /* PULLBACK_VECTOR_H */
