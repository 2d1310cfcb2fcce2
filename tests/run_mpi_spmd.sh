#!/bin/sh
# mpi_spmd (TR_MODE_SPMD, every rank a driver) with 2 and 4 ranks.
set -eu
here=${srcdir:-$(dirname "$0")}
. "$here/mpi_common.sh"

for n in 2 4; do
    echo "== mpi_spmd, $n ranks"
    tr_mpirun "$n" ./mpi_spmd || tr_fail "mpi_spmd with $n ranks"
done
echo "mpi_spmd: all runs passed"
