import csv, sys, collections
rows = list(csv.reader(open(sys.argv[1])))
hdr = None; tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    if 'Kernel Name' in r: hdr = r; continue
    if not hdr or len(r) != len(hdr): continue
    d = dict(zip(hdr, r))
    if d.get('Metric Name') != 'gpu__time_duration.sum': continue
    name = d['Kernel Name'][:70]
    v = float(d['Metric Value'].replace(',', ''))
    unit = d.get('Metric Unit', 'nsecond')
    v = v / 1000 if unit in ('ns', 'nsecond') else v * 1000 if unit in ('ms', 'msecond') else v
    tot[name] += v; cnt[name] += 1
all_ = sum(tot.values())
for k, v in sorted(tot.items(), key=lambda x: -x[1])[:25]:
    print(f"{v:10.1f} us {100*v/all_:5.1f}% n={cnt[k]:5d} {v/cnt[k]:8.2f} us/call  {k}")
print(f"total {all_:.1f} us")
