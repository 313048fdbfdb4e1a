#!/usr/bin/env bash
# The GPU numbers of docs/performance.md (issue 5, goal 4), in one run on a lent GPU machine.
#
#   tools/gpu_bench.sh CIFAR10_JPEG_TARBALL OUT_DIR [STAGE ...]
#
# Needs python3 with torch, torchvision and tqdm; runs the package from this checkout (no install).
# Stages, run in the order given (default: overhead fast10 day50-budget grid, about 12 minutes on
# an H100):
#   overhead     CBAM's overhead on the GPU
#   fast10       the fast recipe for 10 epochs, alone (timed)
#   day50-budget  the Day 50 lesson's recipe alone within a 185 s budget (timed)
#   grid         variants side by side (their accuracies count, their times do not: they share the GPU)
#   profile      the full profile as shipped (fast recipe, 20 epochs), alone (timed; about 1 minute)
#   day50       the Day 50 lesson's recipe for all its 50 epochs, alone (timed; about 5 minutes): what the
#                lesson's own recipe reaches on this copy of CIFAR-10 in the Trainer's CUDA set-up
#                (one run; it differs from the Day 50 lesson's 91.11% run in more than the data)
# Every log is packed into OUT_DIR/logs.tar.gz; the summary goes to stdout.
set -u
tarball=$1; out=$2; shift 2
stages=${*:-overhead fast10 day50-budget grid}
has() { case " $stages " in *" $1 "*) return 0;; esac; return 1; }
logs=$(mktemp -d)
data=/tmp/cifar10-jpeg
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$data" && tar xzf "$tarball" -C "$data"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$logs/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
python3 - "$data" <<'PY' 2>&1 | tee "$logs/decode.log"
import sys, time
from cbam_course.train.data import load_cifar10
t = time.perf_counter()
train, test = load_cifar10(sys.argv[1]), load_cifar10(sys.argv[1], train=False)
print(f"decoded {len(train)} + {len(test)} images in {time.perf_counter() - t:.1f} s")
PY
bench() { name=$1; shift; timeout "$LIMIT" python3 -m cbam_course bench "$@" > "$logs/$name.log" 2>&1; echo "$name: exit $?"; }

pack() { (cd "$logs" && tar czf "$out/logs.tar.gz" .); }

# CBAM's overhead on the GPU: a learner's set-up (float32, NCHW, batch 64) and the Trainer's
# CUDA set-up (bfloat16 autocast, channels_last) at the fast recipe's batch (256).
if has overhead; then
LIMIT=120 bench overhead64 overhead --device cuda --widths 64,32 --batch 64 --rounds 50
LIMIT=120 bench overhead256 overhead --device cuda --widths 64,32 --batch 256 --rounds 50 --amp
pack
fi

# The full profile as shipped, and the Day 50 lesson's recipe to its end, each alone on the GPU.
if has profile; then LIMIT=150 bench profile full --data "$data"; pack; fi
if has day50; then LIMIT=420 bench day50_all full --data "$data" --recipe day50 --epochs 50; pack; fi

# The fast recipe for 10 epochs, alone on the GPU (this time is reported).
if has fast10; then LIMIT=240 bench fast10 full --data "$data" --recipe fast --epochs 10; fi

# The Day 50 lesson's recipe, alone on the GPU, with a time budget so that it ends (and prints) in time
# (about 5.4 s per epoch on an H100: 185 s covers 31 of its 50 epochs).
if has day50-budget; then
LIMIT=215 bench day50 full --data "$data" --recipe day50 --epochs 50 --time-budget 185
pack
fi

# Variants side by side (accuracy only: 14 processes time-share the GPU, each epoch ~6x slower).
if has grid; then
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
fi

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
