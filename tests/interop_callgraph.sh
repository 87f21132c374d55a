#!/usr/bin/env bash
# The layering of rtws.h (see tests/callgraph.py): no implementation section
# uses a function of a later section by name, and every public function is
# defined in the section of the layer that declares it. Ends "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
exec python3 tests/callgraph.py rtws.h
