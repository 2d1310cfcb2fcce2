#!/bin/sh
# Generate configure and the Makefile.in files (needs autoconf, automake,
# libtool and pkg-config).  Then: ./configure && make.
set -e
cd "$(dirname "$0")"
autoreconf -fi "$@"
