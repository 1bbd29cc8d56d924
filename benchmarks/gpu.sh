#!/usr/bin/env bash
# The GPU measurements of the open work, in one run that ends within 10 minutes on one GPU:
#   1. training and inference throughput (benchmarks/throughput.py): the bare step, the runner
#      with the CPU pipeline and with the device pipeline at batch 64, 256 and 512, ResNet101 at
#      128 px, bf16, full augmentation; the device pipeline's host syncs; the Predictor on JPEGs;
#   2. the learning benchmark's GPU rows (benchmarks/learning.py), in the time that is left.
# Usage: bash benchmarks/gpu.sh OUT_DIR      (results: OUT_DIR/throughput, OUT_DIR/learning)
set -u
out=${1:?usage: bash benchmarks/gpu.sh OUT_DIR}
mkdir -p "$out"
export HANDZOO_HOME=${HANDZOO_HOME:-$out/home}
start=$SECONDS
python -c "import handzoo" 2>/dev/null || python -m pip install -q --no-deps -e .
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc;
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$out/machine.txt" 2>&1
timeout 330 python benchmarks/throughput.py --device cuda --model resnet101 --image-size 128 \
    --batch-sizes 64,256,512 --steps 30 --workers 12 --predict-images 512 --out "$out/throughput"
echo "throughput: exit $? after $((SECONDS - start)) s"
left=$((560 - (SECONDS - start)))
if [ "$left" -gt 150 ]; then
    minutes=$(python -c "print(round(max(0.5, ($left - 90) / 4 / 60), 2))")
    timeout "$left" python benchmarks/learning.py --device cuda --models resnet50 --image-size 128 \
        --batch-size 128 --workers 12 --minutes "$minutes" --out "$out/learning"
    echo "learning ($minutes min a head): exit $? after $((SECONDS - start)) s"
fi
