# pullback tests: certificates for TLS tests (certtool).  Source after
# functions.sh, in the test's directory:
#
# make_ca NAME                      NAME.pem, NAME-key.pem: a CA
# make_cert NAME CA PURPOSE [IP]    NAME.pem, NAME-key.pem signed by CA
#                                   (PURPOSE: tls_www_server|client)
# client_dir DIR NAME               ca.pem and NAME's certificate and key
#                                   in DIR, for libnbd's tls-certificates=
#
# SPDX-License-Identifier: BSD-3-Clause

make_ca ()
{
  certtool --generate-privkey --key-type=ecdsa --outfile "$1-key.pem" 2>/dev/null
  printf 'cn = "%s"\nca\ncert_signing_key\nexpiration_days = 2\n' "$1" > "$1.tmpl"
  certtool --generate-self-signed --load-privkey "$1-key.pem" \
    --template "$1.tmpl" --outfile "$1.pem" 2>/dev/null
}

make_cert ()
{
  certtool --generate-privkey --key-type=ecdsa --outfile "$1-key.pem" 2>/dev/null
  {
    printf 'cn = "%s"\norganization = "Pullback Test"\n%s\nsigning_key\nexpiration_days = 2\n' "$1" "$3"
    [ -z "${4:-}" ] || printf 'ip_address = "%s"\ndns_name = "localhost"\n' "$4"
  } > "$1.tmpl"
  certtool --generate-certificate --load-privkey "$1-key.pem" \
    --load-ca-certificate "$2.pem" --load-ca-privkey "$2-key.pem" \
    --template "$1.tmpl" --outfile "$1.pem" 2>/dev/null
  chmod 600 "$1-key.pem"
}

client_dir ()
{
  mkdir -p "$1"
  cp ca.pem "$1/ca-cert.pem"
  cp "$2.pem" "$1/client-cert.pem"
  cp "$2-key.pem" "$1/client-key.pem"
}
