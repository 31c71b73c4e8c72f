set -e
cd "$(dirname "$0")/../.."
for corpus in tinyshakespeare wikitext2-raw-test; do
  f=data/corpora/$corpus.txt
  build/onebit perplexity --file $f --ctx-size 256 --json --kl-divergence-base-out /tmp/q/$corpus.kl > /tmp/q/$corpus.f32.json
  for b in 8 4 2 1; do
    build/onebit perplexity --model /tmp/q/s$b --file $f --ctx-size 256 --json --kl-divergence-base /tmp/q/$corpus.kl > /tmp/q/$corpus.$b.json
  done
done
