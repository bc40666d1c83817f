#!/usr/bin/env python3
# The slowest tests and test classes of a run, from its TRX files: where the suite spends its time.
#   python3 scripts/slowest-tests.py artifacts/test-results
import sys, glob, re, collections, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
def secs(d):
    h,m,s = d.split(':'); return int(h)*3600+int(m)*60+float(s)
rows=[]; byclass=collections.Counter()
for trx in glob.glob(sys.argv[1]+'/*.trx'):
    for r in ET.parse(trx).getroot().iterfind(".//t:UnitTestResult", ns):
        d=secs(r.get('duration','0:0:0'))
        name=r.get('testName'); rows.append((d,name))
        cls='.'.join(re.sub(r'\(.*','',name).split('.')[:-1]); byclass[cls]+=d
rows.sort(reverse=True)
for d,n in rows[:25]: print(f"{d:8.1f}s {n[:150]}")
print('--- by class')
for c,d in byclass.most_common(25): print(f"{d:8.1f}s {c}")
