# --- check every name and digest, pin sandbox images ------------------------------------------------------
# containerd: each imported image also gets its digest name, as a CRI pull records it (repoDigests), so that pods
# referencing @sha256: find it offline; sandbox images get the pin label. Those ctr calls run in the background,
# one job per image (the digest name, then the pin), at most 8 jobs at a time: each ctr start costs ~20 ms.
image_job() { # image_job N NAME DIGEST TAG(0/1) PIN(0/1): status and error in $tmp/tag.N.*, $tmp/pin.N.*
  if [ "$4" = 1 ]; then
    run_ctr images tag --force "$2" "${2%:*}@$3" >/dev/null 2>"$tmp/tag.$1.err"
    echo "$?" >"$tmp/tag.$1.rc"
  fi
  if [ "$5" = 1 ]; then
    run_ctr images label "$2" "$PIN_LABEL" >/dev/null 2>"$tmp/pin.$1.err"
    echo "$?" >"$tmp/pin.$1.rc"
  fi
}
# start_image_jobs before|after: the jobs for the images $tmp/before or $tmp/after (classify's lines) shows
# present, to be imported (TODO) and not pinned; "before" stands for what a complete import made present.
start_image_jobs() {
  sj_n=0
  sj_jobs=0
  while read -r name digest _ pin ok is_pinned todo; do
    sj_n=$((sj_n + 1))
    if [ "$1" = before ]; then todo=$((1 - ok)); elif [ "$ok" != 1 ]; then continue; fi
    sj_tag=0
    if [ "$todo" = 1 ]; then case $name in *@*) ;; *) sj_tag=1 ;; esac; fi
    sj_pin=0
    if [ "$pin" = 1 ] && [ "$is_pinned" = 0 ]; then sj_pin=1; fi
    if [ "$sj_tag" = 1 ] || [ "$sj_pin" = 1 ]; then
      image_job "$sj_n" "$name" "$digest" "$sj_tag" "$sj_pin" &
      sj_jobs=$((sj_jobs + 1))
      [ $((sj_jobs % 8)) -ne 0 ] || wait
    fi
  done <"$tmp/$1"
}
job_ok() { jo_rc=''; read -r jo_rc <"$tmp/$1.rc" 2>/dev/null; [ "$jo_rc" = 0 ]; }
job_error() { tail -n 1 "$tmp/$1.err" 2>/dev/null; }
if pins_supported && [ "$import_complete" = 1 ]; then
  # ctr imported every image to do with the digest of the checked index.json: name them and pin while the image
  # list is read back for the check below
  start_image_jobs before
  read_state
  wait
  classify >"$tmp/after" || die 6 "cannot write scratch files in $tmp (disk full?)"
else
  read_state
  classify >"$tmp/after" || die 6 "cannot write scratch files in $tmp (disk full?)"
  if pins_supported; then
    start_image_jobs after
    wait
  fi
fi
imported=0
missing=0
pinned=0
n=0
while read -r name digest cdigest _ ok _ todo; do
  n=$((n + 1))
  if [ "$ok" = 1 ]; then
    if [ "$todo" = 1 ]; then
      imported=$((imported + 1))
      case $runtime in
        docker|podman|cri-o) say "imported $name (image id $cdigest)" ;;
        *) say "imported $name $digest" ;;
      esac
      if [ -f "$tmp/tag.$n.rc" ] && ! job_ok "tag.$n"; then
        printf 'kubeferry: warning: could not add the digest name %s@%s: %s\n' "${name%:*}" "$digest" "$(job_error "tag.$n")" >&2
      fi
    fi
    if [ -f "$tmp/pin.$n.rc" ]; then
      if job_ok "pin.$n"; then
        pinned=$((pinned + 1))
        say "pinned $name ($PIN_LABEL): kubelet image GC keeps it (containerd >= 1.7 honours the label)"
      else
        missing=$((missing + 1))
        printf 'kubeferry: error: could not pin %s: %s\n' "$name" "$(job_error "pin.$n")" >&2
      fi
    fi
  else
    missing=$((missing + 1))
    printf 'kubeferry: error: MISSING %s: not in %s with %s after the import\n' "$name" "$runtime" "$digest" >&2
  fi
done <"$tmp/after"
summary "$imported" "$present" "$missing" "$pinned"
[ "$missing" -eq 0 ] || exit 1
exit 0
