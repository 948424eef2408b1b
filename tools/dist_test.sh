#!/usr/bin/env bash
# Distributed testing (torchrun; see dist_launch.sh for several nodes):
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
exec bash "$(dirname "$0")/dist_launch.sh" test.py "$3" "$1" "$2" "${@:4}"
