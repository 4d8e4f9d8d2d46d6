#!/usr/bin/env bash
# Seeds each fuzz target's corpus with cliptag's own test files (photos, odd and broken images,
# JPEG forms, HEICs, camera RAWs, sidecars, vocabularies), so the fuzzer starts from real structure. Files are
# named by their content, as libFuzzer names what it finds.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures

seed() { # seed TARGET MAX_SIZE NAME_PATTERN... : copies matching fixtures into corpus/TARGET
    local target=$1 size=$2
    shift 2
    local names=()
    for pattern in "$@"; do names+=(-o -iname "$pattern"); done
    mkdir -p "corpus/$target"
    find "$fixtures" ../assets -type f -size "-$size" \( -false "${names[@]}" \) -print0 |
        while IFS= read -r -d '' file; do
            cp "$file" "corpus/$target/$(sha1sum "$file" | cut -c1-40)"
        done
    echo "$target: $(ls "corpus/$target" | wc -l) seeds"
}

seed decode 400k '*.jpg' '*.jpeg' '*.png' '*.webp' '*.gif' '*.bmp' '*.tif' '*.tiff' '*.heic' '*.heif' \
    '*.cr2' '*.cr3' '*.dng' '*.nef' '*.rw2' '*.raf' '*.orf'
seed jpeg_reduced 400k '*.jpg' '*.jpeg'
seed heif 1000k '*.heic' '*.heif'
seed raw 400k '*.cr2' '*.cr3' '*.dng' '*.nef' '*.rw2' '*.raf' '*.orf'
seed xmp 100k '*.xmp'
seed vocabulary 100k '*.toml'
