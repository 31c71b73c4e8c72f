#!/usr/bin/env bash
cd "$(dirname "$0")/.."
lib=$(dirname "$(find /usr/local /opt -name 'libcublas.so.13' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH=$PWD/.devlib:$lib ONEBIT_DATA_DIR=$PWD/data
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 120 devbin/test_cuda_model 2>&1 | tail -2
devbin/onebit bench model --synthetic bonsai-8b --int8 --save /tmp/s8b --device cuda --reps 1 > /dev/null 2>&1
devbin/onebit bench model --synthetic bonsai-1.7b --int8 --save /tmp/s17 --device cuda --reps 1 > /dev/null 2>&1
for p in 0 1 last 0 1 last; do
ONEBIT_CUDA_PREFETCH=$p devbin/onebit bench model --model /tmp/s8b --device cuda --int8 --reps 3 2>&1 | grep -E "tg|pp" | sed "s/^/8b p=$p /"
done
for p in 0 1 0 1; do
ONEBIT_CUDA_PREFETCH=$p devbin/onebit bench model --model /tmp/s17 --device cuda --int8 --reps 3 2>&1 | grep -E "tg" | sed "s/^/1.7b p=$p /"
done
} 2>&1 | tee $OUT/gpu.txt
mkdir -p build-cuda && cp devbin/onebit build-cuda/onebit
ONEBIT_CUDA_PREFETCH=1 timeout 150 bash scripts/cuda_device.sh timeline $OUT/tl > $OUT/tl.log 2>&1; tail -3 $OUT/tl.log
rm -f $OUT/tl/*.nsys-rep $OUT/tl/*.sqlite $OUT/tl/trace.csv
{
lscpu | grep -E "Model name"
for b in onebit onebit_pf8k onebit onebit_pf8k; do
timeout 60 devbin/$b bench model --model /tmp/s17 --int8 --threads 2 --reps 2 2>&1 | grep -E "tg128|pp512|bound" | tr -s ' ' | sed "s/^/cpu $b /"
done
} 2>&1 | tee $OUT/cpu.txt
