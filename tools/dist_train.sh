#!/usr/bin/env bash
# Distributed training (torchrun; see dist_launch.sh for several nodes):
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
