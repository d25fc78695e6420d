#!/bin/bash
# Build the qcow2 libFuzzer target with clang (-fsanitize=fuzzer,address,
# undefined) and run it for a bounded time (default 60 s) from a seed
# corpus of qemu-made images.  Exit status non-zero if it found a crash.
# Usage: tests/fuzz/run-qcow2-fuzz.sh [SECONDS] [EXTRA LIBFUZZER ARGS...]
set -eu
SECS=${1:-60}
shift || true
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${FUZZ_OUT:-$ROOT/build-fuzz}
mkdir -p "$OUT/corpus" "$OUT/artifacts"

SRC=(devices/qcow2/header.c devices/qcow2/cache.c devices/qcow2/refcount.c
     devices/qcow2/cluster.c devices/qcow2/compress.c devices/qcow2/backing.c
     devices/qcow2/util.c devices/qcow2/io.c devices/qcow2/open.c
     devices/qcow2/check.c devices/qcow2/create.c vmm/log.c)
cd "$ROOT"
clang -g -O1 -std=gnu11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined tests/fuzz/qcow2_fuzz.c "${SRC[@]}" \
	-lz -lzstd -o "$OUT/qcow2_fuzz"

# Seeds: small images of the layouts we support (made by qemu).
if [ -z "$(ls -A "$OUT/corpus")" ] && command -v qemu-img >/dev/null; then
	T=$(mktemp -d)
	i=0
	for o in "" "-o compat=0.10" "-o cluster_size=512" "-o cluster_size=4k,refcount_bits=1" \
		 "-o refcount_bits=64,cluster_size=1k" "-o preallocation=metadata,cluster_size=512"; do
		i=$((i + 1))
		qemu-img create -q -f qcow2 $o "$T/s$i.qcow2" 1M
		qemu-io -f qcow2 -c 'write -P 7 0 4k' -c 'write -z 64k 64k' "$T/s$i.qcow2" >/dev/null
		cp "$T/s$i.qcow2" "$OUT/corpus/"
	done
	qemu-img create -q -f raw "$T/r.raw" 64k
	qemu-io -f raw -c 'write -P 0x61 0 16k' "$T/r.raw" >/dev/null
	qemu-img convert -c -O qcow2 -o cluster_size=4k "$T/r.raw" "$OUT/corpus/zlib.qcow2"
	qemu-img convert -c -O qcow2 -o cluster_size=4k,compression_type=zstd "$T/r.raw" \
		"$OUT/corpus/zstd.qcow2"
	qemu-img snapshot -c s "$OUT/corpus/s1.qcow2"
	rm -rf "$T"
fi

exec "$OUT/qcow2_fuzz" -max_total_time="$SECS" -rss_limit_mb=1024 -timeout=10 \
	-max_len=262144 -artifact_prefix="$OUT/artifacts/" "$@" "$OUT/corpus"
