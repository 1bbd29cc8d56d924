#!/usr/bin/env bash
# The GPU measurements of the open work, in one run that ends within 10 minutes on one GPU:
#   1. training and inference throughput (benchmarks/throughput.py): the bare step, the runner
#      with the CPU pipeline and with the device pipeline at batch 64, 256 and 512, ResNet101 at
#      128 px, bf16, full augmentation; the device pipeline's host syncs; the Predictor on JPEGs;
#   2. the learning benchmark's GPU rows (benchmarks/learning.py), in the time that is left.
#
# Usage: bash benchmarks/gpu.sh OUT_DIR
# Work files (generated images, caches, run folders) stay in a scratch folder; OUT_DIR receives
# only the summaries (machine.txt, throughput.{json,md}, learning.{json,md,png}).
#
# The machine may lack packages handzoo needs (pydantic; setuptools >= 77 to install it) and
# cannot download: put their wheels in .gpu-wheels first (carried with the working tree), e.g.
#   pip download --only-binary :all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       -d .gpu-wheels pydantic 'setuptools>=77'
set -u
out=${1:?usage: bash benchmarks/gpu.sh OUT_DIR}
mkdir -p "$out"
scratch=${SCRATCH:-$(mktemp -d)}
export HANDZOO_HOME=$scratch/home
py=python3
start=$SECONDS
$py -c "import pydantic" 2>/dev/null || $py -m pip install -q --no-index --find-links .gpu-wheels pydantic
$py -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null \
    || $py -m pip install -q --no-index --find-links .gpu-wheels 'setuptools>=77'
# Installed, not merely importable from here: the first-party plugins register through entry points.
$py -c "import importlib.metadata as m; m.version('handzoo')" 2>/dev/null \
    || $py -m pip install -q --no-deps --no-build-isolation -e .
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; df -h /dev/shm | tail -1;
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$out/machine.txt" 2>&1
timeout 330 $py benchmarks/throughput.py --device cuda --model resnet101 --image-size 128 \
    --batch-sizes 64,256,512 --steps 30 --workers 12 --predict-images 512 --out "$scratch/throughput"
echo "throughput: exit $? after $((SECONDS - start)) s"
cp "$scratch"/throughput/throughput.{json,md} "$out"/ 2>/dev/null
left=$((560 - (SECONDS - start)))
if [ "$left" -gt 150 ]; then
    minutes=$($py -c "print(round(max(0.5, ($left - 90) / 4 / 60), 2))")
    timeout "$left" $py benchmarks/learning.py --device cuda --models resnet50 --image-size 128 \
        --batch-size 128 --workers 12 --minutes "$minutes" --out "$scratch/learning"
    echo "learning ($minutes min a head): exit $? after $((SECONDS - start)) s"
    cp "$scratch"/learning/*.{json,md,png} "$out"/ 2>/dev/null
fi
ls -la "$out"
