#!/usr/bin/env bash
# Reserves STRAIT_HUGEPAGES 2 MiB hugepages (default 1024) and makes sure hugetlbfs is
# mounted at /dev/hugepages. Idempotent. Used by strait-hugepages.service.
set -euo pipefail
pages=${STRAIT_HUGEPAGES:-1024}
echo "$pages" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
got=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
if (( got < pages )); then
  echo "warning: asked for $pages hugepages, the kernel reserved $got" >&2
fi
if ! mountpoint -q /dev/hugepages; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
fi
echo "hugepages: $got x 2 MiB at /dev/hugepages"
