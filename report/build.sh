#!/usr/bin/env bash
# Build the report: bash report/build.sh   (from anywhere; writes Miniproject_2/Report_2.pdf)
#
# 1. installs what is missing: LaTeX (Debian packages, about 150 MB) and matplotlib;
# 2. python3 report/make_figures.py: figures, tables and build/numbers.tex from results/
#    (missing results become bold ?? placeholders, with a warning, and the build goes on);
# 3. latexmk compiles report/report.tex into report/build/ and the PDF is copied to
#    Miniproject_2/Report_2.pdf;
# 4. report/stamp.py writes report/sources.sha256, the SHA-256 of the PDF and of the committed
#    files it was built from, which tests/test_report.py checks.
set -euo pipefail
cd "$(dirname "$0")/.."

TEX_PACKAGES=(texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk)
STYLES=(mathptmx amsmath amssymb graphicx booktabs array alltt caption microtype xcolor hyperref geometry)

missing_tex=0
command -v latexmk >/dev/null 2>&1 && command -v pdflatex >/dev/null 2>&1 || missing_tex=1
if [ "$missing_tex" = 0 ]; then
    for style in "${STYLES[@]}"; do
        kpsewhich "$style.sty" >/dev/null 2>&1 || { missing_tex=1; break; }
    done
fi
if [ "$missing_tex" = 1 ]; then
    echo "build.sh: installing LaTeX: ${TEX_PACKAGES[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends "${TEX_PACKAGES[@]}" >/dev/null 2>&1 || {
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends "${TEX_PACKAGES[@]}"
    }
fi
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib

python3 report/make_figures.py

cd report
latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error -outdir=build \
    report.tex >build/latexmk.log 2>&1 || {
    tail -n 40 build/latexmk.log >&2
    echo "build.sh: LaTeX failed, full log in report/build/latexmk.log" >&2
    exit 1
}
cd ..
cp report/build/report.pdf Miniproject_2/Report_2.pdf
python3 report/stamp.py write
pages=$(grep -o 'Output written on .* (\([0-9]*\) page' report/build/report.log | grep -o '([0-9]*' | tr -d '(' || true)
echo "build.sh: wrote Miniproject_2/Report_2.pdf (${pages:-?} pages); commit it with report/sources.sha256"
if [ "${pages:-0}" -gt 3 ]; then
    echo "build.sh: WARNING: ${pages} pages, the course allows 3 (tests/test_report.py fails)" >&2
fi
