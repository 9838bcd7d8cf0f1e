/* pullback: print the endpoint list of the REST API as POD, from the
 * same table that routes requests, for pullback-api(7).
 * SPDX-License-Identifier: BSD-3-Clause
 */

#include <config.h>

#include <stdio.h>

#include "api.h"

int
main (void)
{
  for (const struct api_route *rt = api_routes; rt->method; rt++)
    {
      printf ("=item C<%s %s", rt->method, rt->pattern);
      for (const char *const *q = rt->query; q && *q; q++)
        printf ("%s%s=", q == rt->query ? "?" : "&", *q);
      printf (">\n\n%s\n\n", rt->doc);
    }
  return 0;
}
