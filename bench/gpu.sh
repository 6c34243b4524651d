#!/usr/bin/env bash
# GPU numbers in one go, for a machine with a GPU: the oracle sets on CUDA and WebGPU, the Settings "Test"
# graph, and UNet step times (SD 1.5 512x512 batch 2, SDXL 1024x1024 batch 2), each in fp32 and fp16 compute
# (fp16: runtime/fp16.ts graphs; the oracle's fp16 run is checked under the fp16 rule).
# Prints JSON (bench/gpu.ts). CUDA needs onnxruntime-node's CUDA 12 provider:
#   ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci     (Linux x64)
# Usage: bench/gpu.sh [--providers cuda,webgpu] [--parts test,oracle,step] [--runs 5]
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2
else
  echo "note: no nvidia-smi; CUDA will fall back (its reason is in the JSON)" >&2
fi
exec npx tsx bench/gpu.ts "$@"
