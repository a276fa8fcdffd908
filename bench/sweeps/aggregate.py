# Merge bench/sweeps/out/*.json (per-question hits from bench/sweeps/schedule.ts) by config name and question.
# Usage: python3 bench/sweeps/aggregate.py [from] [to]  -> accuracy per config over the questions it covers in [from, to)
import json, glob, sys
lo, hi = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (0, 300)
res = {}
for p in sorted(glob.glob('bench/sweeps/out/*.json')):
    d = json.load(open(p))
    for r in d['results']:
        name = r['name'].replace('random(def)', 'random 2/3/4') if 'base100' in p else r['name']
        for i, h in enumerate(r['hits']):
            q = d['from'] + i
            if lo <= q < hi: res.setdefault(name, {})[q] = h
ref = res.get('lv 2/3/5 @0.35')
for name, hits in sorted(res.items(), key=lambda kv: kv[0]):
    n = len(hits); a = sum(hits.values()) / n
    print(f'{name:30s} n={n:3d} acc={a:.3f}')
# paired wins/losses of the default (2/3/5, first-stage row-debiased) against each baseline
if len(sys.argv) > 3:
    for f in ('0.35', '0.1', '0.03'):
        a = res.get(f'lv 2/3/5 deb1 @{f}', {})
        for b in (f'random 2/3/5 @{f}', f'random 2/3/5 seed1 @{f}', f'fastv K2 @{f}', f'pdrop @{f}', f'lv 2/3/5 @{f}'):
            bb = res.get(b, {}); qs = [q for q in a if q in bb]
            w = sum(1 for q in qs if a[q] > bb[q]); l = sum(1 for q in qs if a[q] < bb[q])
            print(f'deb1 @{f} vs {b:28s} n={len(qs)} wins={w} losses={l}')
