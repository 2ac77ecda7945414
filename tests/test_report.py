"""Miniproject_2/Report_2.pdf: within the course's 3 pages, and built from the committed sources.

Built by ``bash report/build.sh``, which also writes ``report/sources.sha256`` (report/stamp.py):
the SHA-256 of the PDF and of the files it was built from. A source changed without a rebuild
(or a PDF rebuilt without its stamp) fails here. Standard library only: no LaTeX, no pdfinfo.
"""
import importlib.util
import re
import shutil
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PDF = ROOT / 'Miniproject_2/Report_2.pdf'
MAX_PAGES = 3  # the course handout: "a report of a maximum of 3 pages"
REBUILD = 'rebuild with `bash report/build.sh` and commit the PDF with report/sources.sha256'


def load_stamp():
    spec = importlib.util.spec_from_file_location('report_stamp', ROOT / 'report/stamp.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pdf_objects(data):
    """The PDF's bytes and the inflated content of each of its Flate streams (pdfTeX puts
    most objects, the page tree included, in compressed object streams)."""
    chunks = [data]
    for match in re.finditer(rb'stream\r?\n', data):
        end = data.find(b'endstream', match.end())
        try:
            chunks.append(zlib.decompressobj().decompress(data[match.end():end]))
        except zlib.error:  # not Flate (an image, a font in another encoding)
            pass
    return b'\n'.join(chunks)


def page_count(data):
    """(the root page tree's /Count, the number of /Type /Page leaves)."""
    text = pdf_objects(data)
    counts = []
    for match in re.finditer(rb'/Type\s*/Pages\b', text):
        start, end = text.rfind(b'<<', 0, match.start()), text.find(b'>>', match.end())
        count = re.search(rb'/Count\s+(\d+)', text[start:end])
        if count:
            counts.append(int(count.group(1)))
    leaves = len(re.findall(rb'/Type\s*/Page(?![A-Za-z])', text))
    return max(counts, default=0), leaves


def test_the_report_has_at_most_three_pages():
    count, leaves = page_count(PDF.read_bytes())
    assert count == leaves >= 1, f'page tree says {count} pages, {leaves} page objects'
    assert count <= MAX_PAGES, f'Report_2.pdf has {count} pages; the course allows {MAX_PAGES}'


def test_the_report_is_built_from_the_committed_sources():
    changed = load_stamp().stale()
    assert not changed, f'changed since Report_2.pdf was built: {changed}; {REBUILD}'


def test_the_stamp_covers_the_report_and_the_results_it_quotes():
    stamped = set(load_stamp().read())
    assert {'report/report.tex', 'report/make_figures.py', 'Miniproject_2/Report_2.pdf',
            'results/families_examples.pt'} <= stamped
    named = set(re.findall(r"results/[\w./-]+\.json", (ROOT / 'report/make_figures.py')
                           .read_text()))
    assert named and named <= stamped, f'make_figures.py reads {sorted(named - stamped)}: {REBUILD}'


def test_a_source_changed_without_a_rebuild_is_caught(tmp_path):
    stamp = load_stamp()
    for path in [*stamp.read(), 'report/sources.sha256']:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, tmp_path / path)
    assert stamp.stale(tmp_path) == []
    with open(tmp_path / 'results/families.json', 'a') as file:
        file.write(' ')
    (tmp_path / 'report/report.tex').unlink()
    assert stamp.stale(tmp_path) == ['report/report.tex (missing)', 'results/families.json']


def test_page_count_reads_a_plain_and_a_compressed_page_tree():
    plain = b'1 0 obj << /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >> endobj ' \
            b'2 0 obj << /Type /Page /Parent 1 0 R >> endobj 3 0 obj << /Type /Page >> endobj ' \
            b'4 0 obj << /Type /Outlines /Count 7 >> endobj'
    assert page_count(plain) == (2, 2)
    packed = zlib.compress(plain)
    assert page_count(b'5 0 obj << /Type /ObjStm /Filter /FlateDecode >> stream\n' + packed +
                      b'\nendstream endobj') == (2, 2)
