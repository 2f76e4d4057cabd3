# Measurement script of the linked-table suppression (not yet wired into make bench): attacker
# before/after and masked shares on a small publication. Usage: python -m tests.measure_disclosure PUB.duckdb [WAREHOUSE.duckdb]
import sys, time, duckdb
from pathlib import Path
from pipelines import opendata
from pipelines.disclosure import intervals, is_exposed
pub = Path(sys.argv[1])
t = time.time()
with duckdb.connect(str(pub), read_only=True) as con:
    h = opendata.publication_hierarchy(con)
print("hierarchy inferred in %.1fs" % (time.time() - t), {y: len(v) for y, v in h.items()})
if len(sys.argv) > 2:
    w = duckdb.connect(sys.argv[2], read_only=True)
    truth = {c: (e, d) for c, e, d in w.execute("select code_commune, code_epci, code_departement from intermediate.int_reference__epci_communes").fetchall()}
    for y, m in h.items():
        bad = [(c, p, truth.get(c)) for c, p in m.items() if truth.get(c) != p]
        print(y, "mismatches vs warehouse", len(bad), bad[:3])
with duckdb.connect(str(pub), read_only=True) as con:
    before = [*opendata.incidents_tables(con), opendata.events_table(con), opendata.mixite_table(con)]
# attacker on the old tables
t = time.time()
link_old = opendata.linked_table(before, h)
iv = intervals(link_old)
exp = [i for i, (lo, hi) in iv.items() if is_exposed(lo, hi)]
print("old: masked", len(iv), "exposed", len(exp), "dropped relations", link_old.dropped, "audit %.1fs" % (time.time() - t))
from collections import Counter
print(Counter(link_old.cells[i].key[0] for i in exp), "of which primary", sum(link_old.cells[i].primary for i in exp))
# exact recoveries: interval a single value equal to truth
print("pinned to truth", sum(1 for i in exp if abs(iv[i][0] - link_old.cells[i].value) < 1e-6 and abs(iv[i][1] - iv[i][0]) < 1e-6))
t = time.time()
after, link = opendata.protect_linked(before, h)
print("protect %.1fs" % (time.time() - t))
t = time.time()
iv2 = intervals(link)
print("new: masked", len(iv2), "exposed", sum(is_exposed(*v) for v in iv2.values()), "audit %.1fs" % (time.time() - t))
primary_only = {}
for tb in before:
    keys, counts = opendata._LINKED[tb.name]
    n = sum(tb.frame.get_column(c).is_not_null().sum() for c in counts)
    k = sum(tb.frame.get_column(c).is_between(1, opendata._SEUILS[tb.name.split("_")[0]] - 1).sum() for c in counts)
    primary_only[tb.name] = (k, n)
b, a = opendata.masked_share(before), opendata.masked_share(after)
print("| table | cells | primary | within-table (before) | linked (after) |")
for name in b:
    k0, n = primary_only[name]; k1, _ = b[name]; k2, _ = a[name]
    print(f"| {name} | {n} | {k0} ({k0/n:.1%}) | {k1} ({k1/n:.1%}) | {k2} ({k2/n:.1%}) |")
# attacker on the written files (write_open_data picks the publication's hierarchy)
import tempfile
from pipelines.opendata import write_open_data
import polars as pl
t = time.time()
d = Path(tempfile.mkdtemp())
write_open_data(pub, d)
print("write_open_data %.1fs" % (time.time() - t))
flagged = []
for tb in before:
    keys, counts = opendata._LINKED[tb.name]
    files = pl.read_parquet(d / f"{tb.name}.parquet")
    fr = tb.frame
    for c in counts:
        hidden = files.get_column(c).is_null() & tb.frame.get_column(c).is_not_null()
        fr = fr.with_columns(hidden.alias(opendata._flag(tb.name, c)))
    flagged.append(opendata.OpenTable(tb.name, fr))
lk = opendata.linked_table(flagged, h)
iv3 = intervals(lk)
print("files: masked", len(iv3), "exposed", sum(is_exposed(*v) for v in iv3.values()))
iv4 = intervals(lk, strong=False)
print("files, contract attacker (no primary knowledge): exposed", sum(is_exposed(*v) for v in iv4.values()))
