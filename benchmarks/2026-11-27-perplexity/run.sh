#!/usr/bin/env bash
# The perplexity table of BENCHMARKS.md (2026-11-27, quality).
set -e
cd "$(dirname "$0")/../.."
mkdir -p /tmp/q
for b in 8 4 2; do
  rm -rf /tmp/q/s$b
  build/onebit convert --input models/stories260K --output /tmp/q/s$b --bits $b --group-size 64
done
rm -rf /tmp/q/s1
build/onebit convert --input models/stories260K --output /tmp/q/s1 --bits 1 --group-size 32 --mode symmetric
for corpus in tinyshakespeare wikitext2-raw-test; do
  f=data/corpora/$corpus.txt
  build/onebit perplexity --file $f --ctx-size 256 --json --kl-divergence-base-out /tmp/q/$corpus.kl > /tmp/q/$corpus.f32.json
  for b in 8 4 2 1; do
    build/onebit perplexity --model /tmp/q/s$b --file $f --ctx-size 256 --json --kl-divergence-base /tmp/q/$corpus.kl > /tmp/q/$corpus.$b.json
  done
done
