#!/usr/bin/env bash
# Generates configure and Makefile.in from configure.ac and Makefile.am.
set -euo pipefail
cd "$(dirname "$0")"
# ACLOCAL_AMFLAGS names m4/, which git does not keep while it is empty.
mkdir -p m4
exec autoreconf -fi
