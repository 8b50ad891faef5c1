#!/usr/bin/env bash
# Fails when a binary has AVX code outside the per-ISA namespaces: the
# portable build must run on any x86-64 CPU, so every instruction beyond
# baseline x86-64 (SSE2) belongs to lenet::kernels::isa_avx2, ::isa_avx512 or
# ::isa_avx512vnni (see src/kernels/isa_namespace.h), AVX-512 to the last two
# only, and AVX-512 VNNI (vpdpbusd and kin) to ::isa_avx512vnni only.
# Flags VEX/EVEX-encoded instructions (mnemonics v*, ymm/zmm/mask registers)
# and the ones beyond SSE2 that compilers emit unasked (popcnt, lzcnt, tzcnt,
# SSE3/SSSE3/SSE4 forms are VEX-encoded under -mavx, so v* covers them).
# Usage: scripts/check_isa.sh BINARY...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
command -v objdump >/dev/null || { echo "check_isa: objdump not found (binutils)" >&2; exit 2; }
status=0
for bin in "$@"; do
  [ -f "$bin" ] || { echo "check_isa: $bin: no such file" >&2; exit 2; }
  # One line per offending function: "name: first offending instruction".
  report=$(objdump -d --no-show-raw-insn -C "$bin" | awk '
    /^[0-9a-f]+ <.*>:$/ { fn = substr($0, index($0, "<") + 1); sub(/>:$/, "", fn); avx2 = fn ~ /lenet::kernels::isa_avx2::/; avx512 = fn ~ /lenet::kernels::isa_avx512::/; vnni = fn ~ /lenet::kernels::isa_avx512vnni::/; next }
    /^ *[0-9a-f]+:\t/ {
      if (vnni || fn in seen) next
      split($0, f, "\t"); ins = f[2]; mn = ins; sub(/ .*/, "", mn)
      if (avx512) { if (mn ~ /^vpdp(bu|ws)sds?$/) { print fn ": " ins " (AVX-512 VNNI outside isa_avx512vnni)"; seen[fn] = 1 } ; next }
      wide = ins ~ /%zmm|%k[0-7]|\{%k/ || mn ~ /^kmov|^kor|^kand|^knot|^kxor|^kshift|^ktest|^kortest|^kadd|^kunpck/
      if (avx2) { if (wide) { print fn ": " ins " (AVX-512 outside isa_avx512)"; seen[fn] = 1 } ; next }
      if (wide || ins ~ /%ymm/ || (mn ~ /^v/ && mn !~ /^verr|^verw/) || mn ~ /^(popcnt|lzcnt|tzcnt|andn|bextr|blsi|blsmsk|blsr|bzhi|pdep|pext|rorx|sarx|shlx|shrx|movbe)$/) {
        print fn ": " ins; seen[fn] = 1
      }
    }')
  if [ -n "$report" ]; then
    echo "check_isa: $bin: beyond baseline x86-64 outside the ISA namespaces:" >&2
    echo "$report" | head -50 >&2
    status=1
  else
    echo "check_isa: $bin: ok (AVX code only in lenet::kernels::isa_avx2/isa_avx512/isa_avx512vnni)"
  fi
done
exit $status
