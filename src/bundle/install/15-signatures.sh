# --- signatures -------------------------------------------------------------------------------------------
# `kubeferry sign` writes BUNDLE.sig.json beside the bundle: a DSSE envelope whose payload is an in-toto Statement
# naming the bundle's sha256, size and kubeferry/bundle.json sha256. Trusted keys: --key FILE (repeatable) or, when
# it holds keys, the node policy directory (--trusted-keys DIR, KUBEFERRY_TRUSTED_KEYS, default
# /etc/kubeferry/trusted-keys; its *.pem and *.pub files), which then applies even with no --key and refuses a
# --key outside it. The signatures are checked here with openssl, before the bundle is read; the statement's sha256
# is held against the whole-file hash the checksum check computes anyway (verify_signatures: no second read).
sig_file=$bundle.sig.json
sig_need=0
sig_fail() { die 4 "bundle $bundle $*"; }
sig_short() { printf '%.16s...' "$1"; }
sig_mismatch() { # sig_mismatch WHAT ACTUAL SIGNED
  sig_fail "is not the bundle that was signed: its $1 is $2, the statement signed by $sig_by names $3; it was changed or swapped after signing, nothing was imported. Do not use it: get the bundle again from its signer and compare its sha256 with theirs"
}
# sig_b64d TEXT: TEXT (base64, standard or URL-safe) decoded on stdout, by coreutils/busybox base64 where there is one
# (the checks start few processes: an openssl start costs about ten milliseconds), else by openssl
sig_b64d() {
  case $1 in *[-_]*) set -- "$(printf '%s' "$1" | tr '_-' '/+')" ;; esac
  if have base64; then printf '%s' "$1" | base64 -d 2>/dev/null; else printf '%s' "$1" | openssl base64 -d -A 2>/dev/null; fi
}
# sig_key_facts FILE: "KEYID KIND" of a PEM public key. Its PEM body is the DER SubjectPublicKeyInfo: KEYID is its
# sha256 (as in the envelope), KIND by its size (44 bytes Ed25519, 91 ECDSA P-256). openssl itself reads the key to
# verify: a file that only looks like a key verifies nothing.
sig_key_facts() {
  skf_body=$(awk '/^-----BEGIN PUBLIC KEY-----/ { on = 1; next } /^-----END PUBLIC KEY-----/ { exit } on { sub(/\r$/, ""); printf "%s", $0 }' "$1")
  case ${#skf_body} in 60) skf_kind=ed25519 ;; 124) skf_kind=ecdsa ;; *) return 1 ;; esac # base64 of 44 or 91 bytes
  skf_id=$(sig_b64d "$skf_body" | sha256sum) || return 1
  printf '%s %s\n' "${skf_id%% *}" "$skf_kind"
}
# sig_keys_of LIST OUT: "KEYID KIND FILE" lines for the key files of LIST (one a line), each keyid once
sig_keys_of() {
  : >"$2.all" || die 6 "cannot write scratch files in $tmp (disk full?)"
  while IFS= read -r sko_file; do
    [ -n "$sko_file" ] || continue
    [ -r "$sko_file" ] || die 2 "key $sko_file: no such file or not readable"
    sko_facts=$(sig_key_facts "$sko_file") ||
      die 2 "key $sko_file is not a PEM public key of ECDSA P-256 or Ed25519 (give the signer's public key: openssl pkey -in signer.key -pubout)"
    printf '%s %s\n' "$sko_facts" "$sko_file" >>"$2.all"
  done <<KUBEFERRY_KEYS
$1
KUBEFERRY_KEYS
  awk '!seen[$1]++' "$2.all" >"$2"
}

sig_dir_keys=''
if [ -d "$sig_dir" ]; then
  { [ -r "$sig_dir" ] && [ -x "$sig_dir" ]; } || die 4 "cannot read the node's trusted keys in $sig_dir; nothing was imported (a node policy that cannot be read is not skipped: fix its permissions)"
  for sd_file in "$sig_dir"/*.pem "$sig_dir"/*.pub; do
    [ -f "$sd_file" ] && sig_dir_keys="$sig_dir_keys$sd_file
"
  done
fi
if [ -n "$sig_keys$sig_dir_keys" ]; then
  sig_origin="the node policy $sig_dir"
  if [ -n "$sig_keys" ]; then
    sig_origin='--key'
    while IFS= read -r so_file; do [ -z "$so_file" ] || sig_origin="$sig_origin $so_file"; done <<KUBEFERRY_KEYS
$sig_keys
KUBEFERRY_KEYS
  fi
  have openssl || die 4 "bundle $bundle must carry a signature by $sig_origin, and this node has no openssl to check it: nothing was imported. Install openssl (apt-get install openssl / dnf install openssl), or import with: kubeferry load $bundle --key KEY"
  if [ -n "$sig_dir_keys" ]; then
    sig_keys_of "$sig_dir_keys" "$tmp/sig.policy"
    cp "$tmp/sig.policy" "$tmp/sig.keys" || die 6 "cannot write scratch files in $tmp (disk full?)"
  fi
  if [ -n "$sig_keys" ]; then
    sig_keys_of "$sig_keys" "$tmp/sig.keys"
    if [ -n "$sig_dir_keys" ]; then
      while read -r sk_id _ sk_file; do
        grep -q "^$sk_id " "$tmp/sig.policy" ||
          die 2 "key $sk_file is not among this node's trusted keys in $sig_dir; nothing was imported. Leave --key out to check against the node's keys, or have the node's administrator add it to $sig_dir"
      done <"$tmp/sig.keys"
    fi
  fi
  sig_count=0
  while read -r _; do sig_count=$((sig_count + 1)); done <"$tmp/sig.keys"
  sig_need=${sig_required:-1}
  case $sig_need in ''|*[!0-9]*|0*) die 2 "--require-signatures $sig_need: give a whole number of at least 1" ;; esac
  [ "$sig_need" -le "$sig_count" ] ||
    die 2 "--require-signatures $sig_need can never hold: only $sig_count distinct trusted key(s) ($sig_origin); give one --key per signer"
elif [ -n "$sig_required" ]; then
  die 2 "--require-signatures $sig_required needs the signers' keys: no --key given and no keys in $sig_dir"
fi

if [ "$sig_need" -gt 0 ]; then
  sig_nothing="nothing was imported"
  [ -f "$sig_file" ] ||
    sig_fail "is not signed (no ${sig_file##*/} beside it) and $sig_need signature(s) by $sig_origin are required; $sig_nothing. Get ${sig_file##*/} from whoever built the bundle (kubeferry sign ${bundle##*/} --key THEIR_KEY) and put it beside the bundle; do not bypass the check"
  [ "$(file_size "$sig_file")" -le 262144 ] || sig_fail "has a signature file ${sig_file##*/} too large to be one; $sig_nothing"
  # The whole-file hash (see the end of the bundle checks) starts now, so that the checks below run alongside it.
  # (parts: hashed in the same pass as their listing instead; a failed run: hashed again, as in verify_checksums)
  if [ "$dry_run" = 0 ] && [ "$parted" = 0 ]; then
    openssl dgst -sha256 -r <"$bundle" >"$tmp/bundle.early" 2>/dev/null &
    early_hash=$!
  fi
  # The envelope, whitespace dropped: its payload, then one "sig KEYID SIG" line a signature (KEYID - when absent).
  awk '{ s = s $0 } END {
      gsub(/[ \t\r]/, "", s)
      if (!match(s, /"payloadType":"[^"]*"/) || substr(s, RSTART + 15, RLENGTH - 16) != "application/vnd.in-toto+json") { print "no in-toto payloadType"; exit 1 }
      if (!match(s, /"payload":"[A-Za-z0-9+\/=_-]*"/)) { print "no payload"; exit 1 }
      print "payload", substr(s, RSTART + 11, RLENGTH - 12)
      i = index(s, "\"signatures\":[")
      if (i == 0) { print "no signatures"; exit 1 }
      n = split(substr(s, i + 14), objs, "}")
      for (k = 1; k <= n; k++) {
        id = "-"; sig = ""
        if (match(objs[k], /"keyid":"[0-9a-f]+"/)) id = substr(objs[k], RSTART + 9, RLENGTH - 10)
        if (match(objs[k], /"sig":"[A-Za-z0-9+\/=_-]+"/)) sig = substr(objs[k], RSTART + 7, RLENGTH - 8)
        if (sig != "") print "sig", id, sig
      }
    }' "$sig_file" >"$tmp/sig.env" ||
    sig_fail "has a signature file ${sig_file##*/} that is not a kubeferry bundle signature ($(tail -n 1 "$tmp/sig.env")); $sig_nothing"
  read -r _ sig_payload <"$tmp/sig.env"
  # DSSE's pre-authentication encoding, what each signature is over: "DSSEv1 28 application/vnd.in-toto+json LEN "
  # and the statement (LEN: its length in bytes, from the base64 text's: 3 bytes a 4 characters, less the padding)
  sig_len=$((${#sig_payload} * 3 / 4))
  case $sig_payload in *==) sig_len=$((sig_len - 2)) ;; *=) sig_len=$((sig_len - 1)) ;; esac
  { printf 'DSSEv1 28 application/vnd.in-toto+json %s ' "$sig_len"; sig_b64d "$sig_payload"; } >"$tmp/sig.pae" ||
    sig_fail "has a signature file ${sig_file##*/} whose payload is not base64; $sig_nothing"
  : >"$tmp/sig.ok"
  sig_seen=''
  sig_ok_ids=' '
  while read -r sv_tag sv_id sv_sig; do
    [ "$sv_tag" = sig ] || continue
    sv_valid=0
    sv_tried=0
    while read -r sv_kid sv_kind sv_kfile; do
      [ "$sv_id" = - ] || [ "$sv_id" = "$sv_kid" ] || continue
      sv_tried=1
      sig_b64d "$sv_sig" >"$tmp/sig.bin" || continue
      if [ "$sv_kind" = ed25519 ]; then
        openssl pkeyutl -verify -pubin -inkey "$sv_kfile" -rawin -in "$tmp/sig.pae" -sigfile "$tmp/sig.bin" >/dev/null 2>&1 </dev/null
      else
        openssl dgst -sha256 -verify "$sv_kfile" -signature "$tmp/sig.bin" "$tmp/sig.pae" >/dev/null 2>&1 </dev/null
      fi || continue
      sv_valid=1
      case $sig_ok_ids in *" $sv_kid "*) ;; *) sig_ok_ids="$sig_ok_ids$sv_kid "; printf '%s %s\n' "$sv_kid" "$sv_kfile" >>"$tmp/sig.ok" ;; esac
      break
    done <"$tmp/sig.keys"
    if [ "$sv_valid" = 1 ]; then sig_seen="$sig_seen; keyid $(sig_short "$sv_id"): valid"
    elif [ "$sv_tried" = 1 ]; then sig_seen="$sig_seen; keyid $(sig_short "$sv_id"): does not verify (the signature or the statement was altered)"
    else sig_seen="$sig_seen; keyid $(sig_short "$sv_id"): not a trusted key"
    fi
  done <"$tmp/sig.env"
  sig_by=''
  sig_valid=0
  while read -r _ sb_file; do sig_by="$sig_by${sig_by:+, }$sb_file"; sig_valid=$((sig_valid + 1)); done <"$tmp/sig.ok"
  [ "$sig_valid" -ge "$sig_need" ] ||
    sig_fail "has $sig_valid valid signature(s) from trusted keys where $sig_need by $sig_origin are required (${sig_file##*/}: ${sig_seen#; }); $sig_nothing. If a signer is missing, have them add theirs (kubeferry sign) and copy the .sig.json again; a signature by an unknown key means this is not the bundle you expect: do not use it"
  # What the statement names: the subject's sha256, then the predicate's size and bundle.json sha256
  sig_want_sha='' sig_want_size='' sig_want_meta=''
  read -r sig_want_sha sig_want_size sig_want_meta <<KUBEFERRY_STATEMENT
$(awk '{ s = s $0 } END {
    i = index(s, "\"subject\":["); j = index(s, "\"predicate\":{")
    if (i == 0 || j < i) exit 1
    subject = substr(s, i, j - i); predicate = substr(s, j)
    if (!match(subject, /"sha256":"[0-9a-f]+"/)) exit 1
    sha = substr(subject, RSTART + 10, RLENGTH - 11)
    if (!match(predicate, /"size":[0-9]+/)) exit 1
    size = substr(predicate, RSTART + 7, RLENGTH - 7)
    if (!match(predicate, /"sha256":"[0-9a-f]+"/)) exit 1
    print sha, size, substr(predicate, RSTART + 10, RLENGTH - 11)
  }' "$tmp/sig.pae")
KUBEFERRY_STATEMENT
  if [ "${#sig_want_sha}" != 64 ] || [ -z "$sig_want_size" ] || [ "${#sig_want_meta}" != 64 ]; then
    sig_fail "has a signed statement (${sig_file##*/}) that kubeferry does not know (no bundle sha256, size and bundle.json sha256); $sig_nothing. Sign the bundle again with kubeferry sign"
  fi
  [ "$sig_want_size" = "$bundle_size" ] || sig_mismatch size "$bundle_size" "$sig_want_size"
fi
# The whole-file sha256 into vb_actual: the early hash's when it ran (no second read), else now.
sig_whole_hash() {
  vb_actual=''
  if [ -n "$early_hash" ] && wait "$early_hash"; then read -r vb_actual _ <"$tmp/bundle.early" || vb_actual=''; fi
  early_hash=''
  [ -n "$vb_actual" ] || vb_actual=$(bundle_sha256) # from parts: the listing's pass hashed them
}
# After the checksum check (vb_actual: the whole file's sha256; $tmp/entries: bundle.json's, checked by verify_structure).
verify_signatures() {
  [ "$sig_need" -gt 0 ] || return 0
  [ "$vb_actual" = "$sig_want_sha" ] || sig_mismatch sha256 "$vb_actual" "$sig_want_sha"
  vs_meta=$(awk '$1 == "kubeferry/bundle.json" { print $3 }' "$tmp/entries")
  [ "$vs_meta" = "$sig_want_meta" ] || sig_mismatch "bundle.json sha256" "$vs_meta" "$sig_want_meta"
  verified="$verified, signed by $sig_by ($sig_valid of $sig_need required)"
}
