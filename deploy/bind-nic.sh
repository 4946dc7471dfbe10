#!/usr/bin/env bash
# Binds a NIC to vfio-pci for DPDK (or gives it back to its kernel driver).
#   deploy/bind-nic.sh 0000:01:00.0            # bind to vfio-pci
#   deploy/bind-nic.sh --unbind 0000:01:00.0 ixgbe
# Never bind the interface you are logged in through: the machine drops off the network.
set -euo pipefail
if [[ ${1:-} == --unbind ]]; then
  dpdk-devbind.py --bind="${3:?kernel driver}" "${2:?pci address}"
  exit 0
fi
pci=${1:?usage: bind-nic.sh PCI_ADDRESS}
if dpdk-devbind.py --status-dev net | grep "$pci" | grep -q '\*Active\*'; then
  echo "refusing: $pci carries an active kernel route (is it your management NIC?)" >&2
  exit 1
fi
modprobe vfio-pci
dpdk-devbind.py --bind=vfio-pci "$pci"
dpdk-devbind.py --status-dev net
