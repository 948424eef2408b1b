#!/usr/bin/env bash
# torchrun for one of the tools (what dist_train.sh and dist_test.sh call):
#   tools/dist_launch.sh TOOL NPROC [tool args...]
# NPROC is the number of processes per node (works without GPUs too: each
# process then runs on the CPU over gloo). Several nodes: set NNODES,
# NODE_RANK, MASTER_ADDR and PORT on every node, the same except NODE_RANK.
set -euo pipefail
TOOL=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$TOOLS/$TOOL" \
    "${@:3}" \
    --launcher pytorch
