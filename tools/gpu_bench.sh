#!/usr/bin/env bash
# The GPU numbers of docs/performance.md (issue 5, goal 4), in one run on a lent GPU machine.
#
#   tools/gpu_bench.sh CIFAR10_JPEG_TARBALL OUT_DIR
#
# Needs python3 with torch, torchvision and tqdm; runs the package from this checkout (no install).
# Order: decode the images once (cached), CBAM's overhead on the GPU, the full profile with the
# fast recipe alone (timed), the seed's recipe alone within a time budget (timed), then a grid of
# variants side by side (their accuracies count, their times do not: they share the GPU).
# On an H100 the whole script takes about 12 minutes.
# Every log is packed into OUT_DIR/logs.tar.gz; the summary goes to stdout.
set -u
tarball=$1; out=$2
logs=$(mktemp -d)
data=/tmp/cifar10-jpeg
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$data" && tar xzf "$tarball" -C "$data"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$logs/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
python3 - "$data" <<'PY' 2>&1 | tee "$logs/decode.log"
import sys, time
from cbam_course.data import load_cifar10
t = time.perf_counter()
train, test = load_cifar10(sys.argv[1]), load_cifar10(sys.argv[1], train=False)
print(f"decoded {len(train)} + {len(test)} images in {time.perf_counter() - t:.1f} s")
PY
bench() { name=$1; shift; timeout "$LIMIT" python3 -m cbam_course bench "$@" > "$logs/$name.log" 2>&1; echo "$name: exit $?"; }

# 1. CBAM's overhead on the GPU: a learner's set-up (float32, NCHW, batch 64) and the Trainer's
#    CUDA set-up (bfloat16 autocast, channels_last) at the fast recipe's batch (256).
LIMIT=120 bench overhead64 overhead --device cuda --widths 64,32 --batch 64 --rounds 50
LIMIT=120 bench overhead256 overhead --device cuda --widths 64,32 --batch 256 --rounds 50 --amp

pack() { (cd "$logs" && tar czf "$out/logs.tar.gz" .); }
pack

# 2. The full profile with the fast recipe, alone on the GPU (this time is reported).
LIMIT=240 bench fast10 full --data "$data" --recipe fast --epochs 10

# 3. The seed's recipe, alone on the GPU, with a time budget so that it ends (and prints) in time
#    (about 5.4 s per epoch on an H100: 185 s covers 31 of its 50 epochs).
LIMIT=215 bench seed50 full --data "$data" --recipe seed --epochs 50 --time-budget 185
pack

# 4. Variants side by side (accuracy only: 14 processes time-share the GPU, each epoch ~6x slower).
grid() { name=$1; shift; (LIMIT=300 bench "$name" full --data "$data" "$@") & }
grid fast10_s1   --recipe fast --epochs 10 --seed 1
grid fast10_s2   --recipe fast --epochs 10 --seed 2
grid fast8       --recipe fast --epochs 8
grid fast12      --recipe fast --epochs 12
grid fast15      --recipe fast --epochs 15
grid fast20      --recipe fast --epochs 20
grid b512_lr04   --recipe fast --epochs 10 --batch 512 --lr 0.4
grid b512_lr08   --recipe fast --epochs 10 --batch 512 --lr 0.8
grid b128_lr01   --recipe fast --epochs 10 --batch 128 --lr 0.1
grid b256_lr04   --recipe fast --epochs 10 --lr 0.4
grid ls02        --recipe fast --epochs 10 --label-smoothing 0.2
grid none10      --recipe fast --epochs 10 --attention none
grid se10        --recipe fast --epochs 10 --attention se
grid w128        --recipe fast --epochs 10 --width 128
wait
pack

echo "== summary"
for f in "$logs"/*.log; do
  n=$(basename "$f" .log)
  case $n in
    overhead*) grep -E "^(eager|channels_last)" "$f" | sed "s/^/$n: /" ;;
    decode) ;;
    *) grep -E "^(target|test accuracy|trained)" "$f" | sed "s/^/$n: /"
       grep -E "^  epoch" "$f" | tail -1 | sed "s/^/$n: /" ;;
  esac
  grep -E "Error|error:" "$f" | tail -3 | sed "s/^/$n: /"
done
