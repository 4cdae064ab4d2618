"""Presentation-attack videos: still photos held up to the kiosk as a print or a phone.

    uv run python -m bench.attacks /tmp/attacks               # every attack, listed
    uv run python -m bench.attacks /tmp/attacks --seconds 2 \\
        --photo lin_manuel_miranda/lin_manuel_miranda1.png

Each video shows one still photo from ../shared/faces as a flat presentation attack
instrument (PAI, in ISO/IEC 30107-3's words), as a fixed kiosk camera sees it: 640x360
at 30 frames per second, the instrument over a background of a room. Three species:

- ``print``: the whole photo printed on paper, a white margin around it, the paper's
  duller contrast and warmer white, lit unevenly as it turns;
- ``cutout``: the face cut out of such a print (an oval around it), so no paper edge
  shows around the face;
- ``phone``: the photo zoomed on a phone screen (portrait, black bezel), brighter and
  bluer than paper, with the screen's pixel grid (which beats against the camera's into
  moiré) and a glare.

The instrument is a plane in 3-D moved by a hand and seen through a pinhole camera, so
every frame is an exact perspective picture of the plane. Three motions:

- ``sway``: held still at arm's length: slow drift, a few degrees of turn, hand tremor;
- ``tilt``: deliberately turned and tilted, up to 35 degrees of yaw and 25 of pitch
  (perspective), and rolled in the image plane, to fake a moving head;
- ``approach``: carried towards the camera at walking pace (the face grows about twice
  as wide), bobbing with the steps.

Every frame then gets mild blur, sensor noise and a JPEG round trip, and the video is
written with OpenCV's MPEG-4 codec. The face is 60 to 170 px wide in the video (the
real clip's is 86-104 px; the kiosk encodes faces from 60 px). Videos go to the folder
given (a temporary one in the bench and the tests), never into the repository.
Everything is seeded: the same arguments give the same videos.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from recognition.faces import Box, FaceModels

RGB = npt.NDArray[np.uint8]
Float = npt.NDArray[np.float32]
Matrix = npt.NDArray[np.float64]

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
SPECIES = ("print", "cutout", "phone")
MOTIONS = ("sway", "tilt", "approach")
WIDTH, HEIGHT, FPS = 640, 360, 30.0
FOCAL = 560.0  # pixels: about 60 degrees across 640 px, a usual webcam / Pi camera
# The attack photos, per identity: the enrollment photo of bench.pipeline (the gallery
# holds its template, so a match is certain) and, where there is one, another photo of
# the same person (what an attacker finds online).
PHOTOS = (
    "obama/obama1.jpg",
    "obama/obama2.jpg",
    "biden/biden1.jpg",
    "biden/biden2.jpg",
    "alex_lacamoire/alex_lacamoire1.png",
    "alex_lacamoire/alex_lacamoire2.jpg",
    "lin_manuel_miranda/lin_manuel_miranda1.png",
    "kit_harington/kit_harington1.jpg",
    "kit_harington/kit_harington2.jpg",
    "rose_leslie/rose_leslie1.jpg",
    "rose_leslie/rose_leslie2.jpg",
)


@dataclass(frozen=True)
class AttackSpec:
    """One attack: which photo, as which instrument, moved how (``seed``: its randomness)."""

    photo: str  # inside the faces folder, e.g. "obama/obama1.jpg"
    species: str
    motion: str
    seed: int

    def __post_init__(self) -> None:
        if self.species not in SPECIES or self.motion not in MOTIONS:
            raise ValueError(
                f"species must be one of {SPECIES} and motion one of {MOTIONS}, "
                f"not {self.species!r} / {self.motion!r}"
            )

    @property
    def identity(self) -> str:
        """The person in the photo (the folder's name in ../shared/faces)."""
        return self.photo.split("/", 1)[0]

    @property
    def name(self) -> str:
        """A file-name-safe label: ``print-obama1-tilt``."""
        return f"{self.species}-{Path(self.photo).stem}-{self.motion}"


@dataclass(frozen=True)
class AttackVideo:
    spec: AttackSpec
    path: Path
    frames: int
    face_px: tuple[int, int]  # narrowest and widest face in the video, pixels


def default_specs(photos: Sequence[str] = PHOTOS, seed: int = 7) -> list[AttackSpec]:
    """Every photo as every species; the motions rotate, so each species and each
    identity with one photo meets every motion."""
    return [
        AttackSpec(photo, species, MOTIONS[(i + j) % len(MOTIONS)], seed + 10 * i + j)
        for i, photo in enumerate(photos)
        for j, species in enumerate(SPECIES)
    ]


# --------------------------------------------------------------------------- geometry


def rotation(yaw: float, pitch: float, roll: float) -> Matrix:
    """Rotation (degrees) of the plane: yaw about the vertical axis, pitch about the
    horizontal one, roll in the image plane. Camera axes: x right, y down, z forward."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    out: Matrix = rz @ ry @ rx
    return out


def plane_homography(pose: Pose, metres_per_px: float, centre: tuple[float, float]) -> Matrix:
    """Texture pixels -> video pixels for a plane at ``pose``; the texture's ``centre``
    sits on the plane's origin and one texture pixel is ``metres_per_px`` wide."""
    k = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
    r = rotation(pose.yaw, pose.pitch, pose.roll)
    rt = np.column_stack([r[:, 0], r[:, 1], [pose.x, pose.y, pose.z]])
    s = metres_per_px
    to_metres = np.array([[s, 0, -s * centre[0]], [0, s, -s * centre[1]], [0, 0, 1]])
    h: Matrix = k @ rt @ to_metres
    out: Matrix = h / h[2, 2]
    return out


@dataclass(frozen=True)
class Pose:
    """Where the plane is: its origin in metres from the camera, its turn in degrees."""

    x: float
    y: float
    z: float
    yaw: float
    pitch: float
    roll: float


class Motion:
    """A hand's path for one video: a deliberate movement plus tremor, all seeded."""

    def __init__(self, kind: str, rng: np.random.Generator, face_m: float, seconds: float):
        self.kind = kind
        self.seconds = seconds
        u = rng.uniform
        # Distances giving a face this wide in the video (pixels = FOCAL * metres / z).
        if kind == "approach":
            self.z0, self.z1 = FOCAL * face_m / u(60, 75), FOCAL * face_m / u(130, 170)
        else:
            self.z0 = self.z1 = FOCAL * face_m / u(62, 150)
        # Where the face sits: off centre by up to a quarter of the frame.
        self.cx, self.cy = u(-110, 110), u(-40, 30)
        big = kind == "tilt"
        self.amp = {
            "yaw": u(20, 35) if big else u(3, 8),
            "pitch": u(12, 25) if big else u(3, 6),
            "roll": u(8, 20) if big else u(2, 8),
            "x": u(0.01, 0.03),
            "y": u(0.005, 0.02),
        }
        self.freq = {k: u(0.25, 0.6) if big else u(0.3, 1.0) for k in self.amp}
        self.phase = {k: u(0, 2 * math.pi) for k in self.amp}
        self.base = {"yaw": u(-10, 10), "pitch": u(-8, 8), "roll": u(-10, 10)}
        # Tremor: a few degrees / millimetres at 4-9 Hz.
        self.tremor = [(u(4, 9), u(0, 2 * math.pi), u(0.2, 0.6)) for _ in range(3)]

    def at(self, t: float) -> Pose:
        def wave(key: str) -> float:
            return self.amp[key] * math.sin(2 * math.pi * self.freq[key] * t + self.phase[key])

        shake = sum(a * math.sin(2 * math.pi * f * t + p) for f, p, a in self.tremor)
        z = self.z0 + (self.z1 - self.z0) * min(t / self.seconds, 1.0)
        bob = 0.015 * math.sin(2 * math.pi * 1.8 * t) if self.kind == "approach" else 0.0
        return Pose(
            x=(self.cx * z / FOCAL) + wave("x") + 0.001 * shake,
            y=(self.cy * z / FOCAL) + wave("y") + bob + 0.001 * shake,
            z=z,
            yaw=self.base["yaw"] + wave("yaw") + shake,
            pitch=self.base["pitch"] + wave("pitch") + 0.7 * shake,
            roll=self.base["roll"] + wave("roll") + 0.5 * shake,
        )


# --------------------------------------------------------------------------- pictures


def background(rng: np.random.Generator) -> Float:
    """A room behind the instrument: a lit wall, a door, a poster, a shelf; blurred."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    wall = rng.uniform(90, 200, size=3)
    light = 1.0 + 0.25 * np.cos((xs / WIDTH - rng.uniform(0, 1)) * math.pi)
    image = wall[None, None, :] * light[..., None] * (1.0 - 0.15 * ys[..., None] / HEIGHT)
    for _ in range(int(rng.integers(3, 7))):
        w, h = int(rng.integers(40, 220)), int(rng.integers(30, 300))
        x, y = int(rng.integers(-20, WIDTH)), int(rng.integers(-20, HEIGHT))
        image[max(y, 0) : y + h, max(x, 0) : x + w] = rng.uniform(20, 235, size=3)
    image += rng.normal(0, 6, size=image.shape)
    return _f32(cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.float32), (0, 0), 2.0))


def _f32(array: object) -> Float:
    return np.asarray(array, dtype=np.float32)


def _texture(
    photo: RGB, face: Box, species: str, rng: np.random.Generator
) -> tuple[Float, Float, tuple[float, float]]:
    """The instrument's face as an image (float RGB), its opacity (1 where it is) and
    where the photo's face centre lies on it (texture pixels)."""
    picture = _f32(photo)
    height, width = picture.shape[:2]
    if species == "phone":
        # The photo zoomed so the face fills about 60% of a 9:19.5 portrait screen.
        screen_w = face.width / 0.6
        screen_h = screen_w * 19.5 / 9
        x0, y0 = face.center_x - screen_w / 2, face.center_y - screen_h * 0.42
        m = np.array([[1, 0, -x0], [0, 1, -y0]], dtype=np.float64)
        size = (round(screen_w), round(screen_h))
        shown = _f32(cv2.warpAffine(picture, m, size, borderMode=cv2.BORDER_CONSTANT))
        shown = _f32(255 * (np.clip(shown, 0, 255) / 255) ** 0.85 * 1.05)
        shown *= _f32([0.94, 1.0, 1.08])  # a cooler white than paper
        ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
        pitch = rng.uniform(2.5, 4.0)  # texture pixels per screen pixel: the pixel grid
        shown *= 1 - 0.06 * (np.sin(2 * math.pi * xs / pitch) ** 2)[..., None]
        gx, gy = rng.uniform(0.2, 0.8) * size[0], rng.uniform(0.1, 0.5) * size[1]
        glare = np.exp(-(((xs - gx) ** 2 + (ys - gy) ** 2) / (2 * (0.3 * size[0]) ** 2)))
        shown += 60 * rng.uniform(0.3, 1.0) * glare[..., None]
        bezel = max(round(0.06 * size[0]), 2)
        device = np.full((size[1] + 2 * bezel, size[0] + 2 * bezel, 3), 12.0, np.float32)
        device[bezel:-bezel, bezel:-bezel] = shown
        centre = (face.center_x - x0 + bezel, face.center_y - y0 + bezel)
        return device, np.ones(device.shape[:2], np.float32), centre
    # Paper: duller, warmer, a white margin around the photo.
    printed = (0.82 * picture + 25.0) * _f32([1.02, 1.0, 0.95])
    margin = round(0.05 * max(height, width))
    paper = np.full((height + 2 * margin, width + 2 * margin, 3), 235.0, np.float32)
    paper[margin:-margin, margin:-margin] = printed
    alpha = np.ones(paper.shape[:2], np.float32)
    centre = (face.center_x + margin, face.center_y + margin)
    if species == "cutout":
        alpha = np.zeros(paper.shape[:2], np.float32)
        axes = (round(face.width * 0.8), round(face.height * 1.1))
        cv2.ellipse(alpha, (round(centre[0]), round(centre[1])), axes, 0, 0, 360, 1.0, -1)
    return paper, alpha, centre


def _degrade(frame: Float, rng: np.random.Generator, blur: float, noise: float) -> RGB:
    """Lens blur, sensor noise and a JPEG round trip."""
    blurred = _f32(cv2.GaussianBlur(frame, (0, 0), blur))
    noisy = blurred + rng.normal(0, noise, size=frame.shape).astype(np.float32)
    bgr = cv2.cvtColor(np.clip(noisy, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    quality = int(rng.integers(70, 91))
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("OpenCV could not decode its own JPEG")
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def render(
    photo: RGB, face: Box, spec: AttackSpec, *, seconds: float = 3.0
) -> Iterator[tuple[RGB, int]]:
    """The attack's frames (RGB) with the face's width in each, in pixels."""
    rng = np.random.default_rng(spec.seed)
    # Shrink a large photo first, to about twice the largest size its face will have in
    # the video: the perspective warp then does not alias it, and each frame is cheap.
    scale = min(1.0, 2 * 180 / face.width)
    if scale < 1.0:
        size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
        photo = np.ascontiguousarray(cv2.resize(photo, size, interpolation=cv2.INTER_AREA))
        face = face.scaled(scale)
    texture, alpha, centre = _texture(photo, face, spec.species, rng)
    # Face widths: 60% of a 6.5 cm wide phone screen, or printed about life size.
    face_m = rng.uniform(0.035, 0.045) if spec.species == "phone" else rng.uniform(0.12, 0.15)
    motion = Motion(spec.motion, rng, face_m, seconds)
    room = _f32(background(rng))
    blur, noise = rng.uniform(0.5, 1.0), rng.uniform(1.5, 3.5)
    light_dir = rng.uniform(-1, 1)
    size = (WIDTH, HEIGHT)
    for index in range(round(seconds * FPS)):
        pose = motion.at(index / FPS)
        h = plane_homography(pose, face_m / face.width, centre)
        warped = _f32(cv2.warpPerspective(texture, h, size, flags=cv2.INTER_LINEAR))
        cover = _f32(cv2.warpPerspective(alpha, h, size, flags=cv2.INTER_LINEAR))[..., None]
        # Paper and screens catch more or less light as they turn.
        shade = np.float32(1.0 + 0.12 * math.sin(math.radians(pose.yaw) + light_dir))
        frame = room * (1 - cover) + warped * shade * cover
        yield _degrade(frame, rng, blur, noise), round(FOCAL * face_m / pose.z)


def write_attack(
    spec: AttackSpec, photo: RGB, face: Box, folder: Path, *, seconds: float = 3.0
) -> AttackVideo:
    """Render one attack into ``folder`` as ``<name>.mp4``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with the mp4v codec")
    widths = []
    try:
        for image, width in render(photo, face, spec, seconds=seconds):
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            widths.append(width)
    finally:
        writer.release()
    return AttackVideo(spec, path, len(widths), (min(widths), max(widths)))


def build_attacks(
    folder: Path,
    specs: Sequence[AttackSpec] | None = None,
    *,
    faces: Path = FACES,
    seconds: float = 3.0,
    models: FaceModels | None = None,
) -> list[AttackVideo]:
    """Write every attack video into ``folder``; the face in each photo is found with
    ``models`` (the default HOG detector)."""
    from recognition.photos import read_image

    models = models or FaceModels()
    specs = default_specs() if specs is None else specs
    photos: dict[str, tuple[RGB, Box]] = {}
    videos = []
    for spec in specs:
        if spec.photo not in photos:
            image = read_image(faces / spec.photo)
            boxes = models.detect(image)
            if len(boxes) != 1:
                raise ValueError(f"{spec.photo}: {len(boxes)} faces found, need exactly one")
            photos[spec.photo] = (image, boxes[0])
        image, box = photos[spec.photo]
        videos.append(write_attack(spec, image, box, folder, seconds=seconds))
    return videos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, help="where the videos go (created)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each video")
    parser.add_argument(
        "--photo", action="append", help="a photo inside the faces folder (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be more than 0")
    if not (FACES / "MANIFEST.csv").is_file():
        print(f"bench.attacks: {FACES} is missing (the shared faces folder)", file=sys.stderr)
        return 2
    specs = default_specs(args.photo or PHOTOS, seed=args.seed)
    videos = build_attacks(args.folder, specs, seconds=args.seconds)
    with (args.folder / "attacks.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["video", "identity", "photo", "species", "motion", "frames", "face_px"])
        for v in videos:
            s = v.spec
            row = [v.path.name, s.identity, s.photo, s.species, s.motion, v.frames]
            out.writerow([*row, f"{v.face_px[0]}-{v.face_px[1]}"])
            print(f"{v.path}  {s.species:6} {s.motion:8} face {v.face_px[0]}-{v.face_px[1]} px")
    print(f"{len(videos)} attack videos in {args.folder} (list: attacks.csv)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
