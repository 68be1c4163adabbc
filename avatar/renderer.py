"""The CPU renderer: motion parameters + persona pack → RGB frames.

It is a dense backward warp of the portrait, built from displacement fields
that are precomputed once per persona:

- smooth fields (head pose, smile, brows, mouth width) are stored at a quarter
  of the resolution and mixed with one matrix-vector product per frame, then
  upsampled;
- the jaw field is full resolution and has a step along the lips' inner line,
  so the lips part instead of stretching; the gap between them is painted
  with a synthesised mouth interior (a cavity shaded darker towards the
  throat, a tongue that rises on "l"/"th", upper and lower teeth); below
  zero the lips press together, the lower lip rolling in. Closing from an
  open-mouthed portrait has its own field, so the lips meet along the whole
  mouth at once; rounding also purses the lips (the pucker field), and the
  interior is painted at the portrait column each output column shows;
- the eyelids close by stretching the lid skin down to a moving lid edge,
  computed per frame in two small eye crops.

Only the head's bounding box is warped; everything outside it is the
reference image itself, and inside it any pixel whose displacement is zero
is copied exactly (``cv2.remap`` of an integer position), so nothing drifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import MeshIndex
from .motion import MotionParams
from .persona import PersonaPack

__all__ = ["CpuRenderer"]

_SMOOTH = ("tx", "ty", "roll", "yaw", "pitch", "smile", "brow", "mouth_width", "pucker")
_LOW = 4  # smooth fields are stored at 1/_LOW resolution
_TEETH = np.array([228, 222, 212], np.float32)
_CAVITY_TOP = np.array([46, 16, 14], np.float32)
_CAVITY_BOTTOM = np.array([118, 46, 42], np.float32)
_TONGUE = np.array([160, 66, 70], np.float32)


def _line(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """A landmark polyline, as y for each x in ``xs`` (clamped at its ends)."""
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1]).astype(np.float32)


@dataclass
class _Box:
    """A pixel rectangle ``[y0, y1) x [x0, x1)`` in pack coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = np.mgrid[self.y0:self.y1, self.x0:self.x1]
        return xs.astype(np.float32), ys.astype(np.float32)


@dataclass
class _Eye:
    """One eye's rest geometry, in pack coordinates over ``box``'s columns."""

    box: _Box
    upper: np.ndarray  # (w,) upper lid edge y per column
    lower: np.ndarray  # (w,) lower lid edge y per column
    brow: np.ndarray  # (w,) top of the skin that stretches over the eye
    span: np.ndarray  # (w,) 1 inside the eye's width, 0 outside
    width: float


@dataclass
class _Gap:
    """Where the parted lips show the mouth interior in this frame.

    ``sub`` indexes the head box; ``alpha`` is the interior's coverage there;
    ``edge_up``/``edge_low`` are the lips' edges per column, ``ys`` the rows.
    """

    sub: tuple[slice, slice]
    alpha: np.ndarray
    edge_up: np.ndarray
    edge_low: np.ndarray
    ys: np.ndarray
    src: np.ndarray  # per column of ``sub``: the portrait's column it shows, in the jaw box


class CpuRenderer:
    """Renders frames of one persona; build once per stream, call per frame.

    Args:
        pack: the prepared persona.
    """

    def __init__(self, pack: PersonaPack) -> None:
        self.pack = pack
        self.size = pack.resolution
        self._reference = np.ascontiguousarray(pack.image)
        p = pack.points
        oval = p[list(MeshIndex.FACE_OVAL)]
        self._face_w = float(np.ptp(oval[:, 0]))
        self._face_h = float(np.ptp(oval[:, 1]))
        self._mouth_l, self._mouth_r = p[61], p[291]
        self._mouth_w = float(np.linalg.norm(self._mouth_r - self._mouth_l))
        self._mouth_c = (self._mouth_l + self._mouth_r) / 2
        # 1. The head box: the support of the head mask.
        self._head = self._head_box(pack.masks.head)
        self._grid_x, self._grid_y = self._head.grid()
        # 2. Smooth fields at low resolution, as one (2*h*w, K) matrix.
        self._smooth_basis, self._low_shape = self._smooth_fields()
        # 3. The jaw field and the lip line.
        self._build_jaw()
        # 4. The eyes.
        self._eyes = [self._eye(MeshIndex.EYE_LEFT_UPPER, MeshIndex.EYE_LEFT_LOWER),
                      self._eye(MeshIndex.EYE_RIGHT_UPPER, MeshIndex.EYE_RIGHT_LOWER)]
        self._jaw_rest = float(np.clip(self._rest_gap / self._max_open, 0.0, 1.0))

    @property
    def rest_jaw(self) -> float:
        """The ``jaw`` value that reproduces the portrait's own mouth opening."""
        return self._jaw_rest

    # --- precomputation --------------------------------------------------------

    def _head_box(self, head: np.ndarray) -> _Box:
        """The head mask's support, grown to multiples of ``_LOW`` so the
        upsampled fields line up exactly with the low-resolution samples."""
        ys, xs = np.nonzero(head > 0)
        bounds = []
        for lo, hi in ((int(xs.min()), int(xs.max()) + 1), (int(ys.min()), int(ys.max()) + 1)):
            hi = min(self.size, lo + -(-(hi - lo) // _LOW) * _LOW)
            lo = hi - -(-(hi - lo) // _LOW) * _LOW
            bounds.append((max(0, lo), hi))
        (x0, x1), (y0, y1) = bounds
        return _Box(x0, y0, x1, y1)

    def _smooth_fields(self) -> tuple[np.ndarray, tuple[int, int]]:
        """Forward displacement per unit of each smooth parameter, in pixels."""
        h, w = self._head.y1 - self._head.y0, self._head.x1 - self._head.x0
        lh, lw = -(-h // _LOW), -(-w // _LOW)
        ys, xs = np.mgrid[0:lh, 0:lw].astype(np.float32)
        # Positions of the low-res samples as cv2.resize sees them.
        X = self._head.x0 + (xs + 0.5) * _LOW - 0.5
        Y = self._head.y0 + (ys + 0.5) * _LOW - 0.5
        # Eroded by the upsampling footprint: zero-mask pixels get exactly zero displacement.
        eroded = cv2.erode(self.pack.masks.head, np.ones((2 * _LOW + 3, 2 * _LOW + 3), np.uint8))
        H = cv2.remap(eroded, X, Y, cv2.INTER_LINEAR)
        face = cv2.remap(self.pack.masks.face, X, Y, cv2.INTER_LINEAR)
        fw, fh, mw = self._face_w, self._face_h, self._mouth_w
        nose = self.pack.points[MeshIndex.NOSE_TIP]
        chin = self.pack.points[MeshIndex.CHIN]
        depth = np.exp(-(((X - nose[0]) ** 2 + (Y - nose[1]) ** 2) / (2 * (0.35 * fw) ** 2)))
        fields: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        zero = np.zeros_like(X)
        fields["tx"] = (0.03 * fw * H, zero)
        fields["ty"] = (zero, 0.03 * fw * H)
        pivot = chin + np.array([0.0, 0.3 * fh])
        theta = np.radians(4.0)
        fields["roll"] = (-theta * (Y - pivot[1]) * H, theta * (X - pivot[0]) * H)
        fields["yaw"] = (0.045 * fw * H * (0.4 + 0.6 * depth), zero)
        fields["pitch"] = (zero, 0.035 * fw * H * (0.3 + 0.7 * depth))
        # Smile: the mouth corners go up and out, the cheeks lift a little.
        smile_x, smile_y = zero.copy(), zero.copy()
        for corner, side in ((self._mouth_l, -1.0), (self._mouth_r, 1.0)):
            g = np.exp(-(((X - corner[0]) ** 2 + (Y - corner[1]) ** 2) / (2 * (0.28 * mw) ** 2)))
            cheek = np.exp(-(((X - corner[0] - side * 0.3 * mw) ** 2 + (Y - corner[1] + 0.5 * mw) ** 2)
                             / (2 * (0.4 * mw) ** 2)))
            smile_x += side * 0.10 * mw * g
            smile_y += -0.10 * mw * g - 0.04 * mw * cheek
        fields["smile"] = (smile_x * face * H, smile_y * face * H)
        # Brows: forehead skin moves up; falls off fast towards the eyes.
        brows = self.pack.points[list(MeshIndex.BROW_LEFT + MeshIndex.BROW_RIGHT)]
        by = float(brows[:, 1].mean())
        bx0, bx1 = float(brows[:, 0].min()), float(brows[:, 0].max())
        across = np.exp(-np.maximum(0, np.maximum(bx0 - X, X - bx1)) ** 2 / (2 * (0.08 * fw) ** 2))
        sigma = np.where(Y > by, 0.045 * fh, 0.16 * fh)
        fields["brow"] = (zero, -0.045 * fh * across * np.exp(-((Y - by) ** 2) / (2 * sigma**2)) * H)
        # Mouth width: stretch or compress horizontally around the mouth.
        mc = self._mouth_c
        around = np.exp(-(((X - mc[0]) / (0.7 * mw)) ** 2 + ((Y - mc[1]) / (0.45 * mw)) ** 2))
        fields["mouth_width"] = (0.26 * mw * np.clip((X - mc[0]) / (0.5 * mw), -1.5, 1.5) * around * H, zero)
        # Pucker (rounded lips, on top of the narrower width): the lips close in
        # from above and below over the teeth and the corners come further in,
        # leaving a small round opening in the middle.
        p = self.pack.points
        mid_y = float(p[13][1] + p[14][1]) / 2  # between the inner lips' middles
        purse = np.exp(-(((X - mc[0]) / (0.65 * mw)) ** 2 + ((Y - mid_y) / (0.45 * mw)) ** 2))
        corners = np.clip(np.abs(X - mc[0]) / (0.5 * mw), 0, 1.2)
        shut = max(2.0, 0.3 * float(p[14][1] - p[13][1]))  # how far each lip travels, pixels
        fields["pucker"] = (-0.12 * mw * np.clip((X - mc[0]) / (0.5 * mw), -1.5, 1.5) * purse * H,
                            -shut * np.tanh((Y - mid_y) / (0.15 * mw)) * (0.6 + 0.4 * corners) * purse * H)
        basis = np.stack([np.stack(fields[name], axis=-1).ravel() for name in _SMOOTH], axis=1)
        return np.ascontiguousarray(basis, np.float32), (lh, lw)

    def _build_jaw(self) -> None:
        """Jaw field: lower face down, with a step along the lower lip's inner edge."""
        p = self.pack.points
        fw, fh, mw = self._face_w, self._face_h, self._mouth_w
        mc = self._mouth_c
        chin_y = float(p[MeshIndex.CHIN][1])
        box = _Box(max(self._head.x0, int(mc[0] - 0.6 * fw)), max(self._head.y0, int(mc[1] - 0.3 * fh)),
                   min(self._head.x1, int(mc[0] + 0.6 * fw) + 1), min(self._head.y1, int(chin_y + 0.25 * fh)))
        X, Y = box.grid()
        cols = X[0]
        line = _line(p[list(MeshIndex.LIPS_LOWER_INNER)], cols)
        upper = _line(p[list(MeshIndex.LIPS_UPPER_INNER)], cols)
        inner_l, inner_r = p[78], p[308]  # the inner corners, where the lips meet
        u = (cols - (inner_l[0] + inner_r[0]) / 2) / (0.5 * (inner_r[0] - inner_l[0]) * 0.95)
        span = np.clip(1 - u**2, 0, 1) ** 0.9  # how far the lips part, per column
        lat = np.clip(1 - ((cols - mc[0]) / (0.6 * fw)) ** 2, 0, 1) ** 2  # zero at the box sides
        below = np.clip(1 - (Y - chin_y) / (0.2 * fh), 0, 1)
        below = below * below * (3 - 2 * below)
        head = self.pack.masks.head[box.slices]
        low = lat * below * head  # lower face, extended upwards unchanged
        above = np.clip(1 - (line - Y) / (0.25 * fh), 0, 1) ** 2
        up_lip = -0.15 * np.clip(1 - (line - Y) / (0.12 * fh), 0, 1)
        self._max_open = 0.42 * mw
        self._lower_lip_h = float(max(1.0, p[17][1] - p[14][1]))  # lower lip thickness at the middle
        self._rest_gap = float(max(0.0, np.interp(mc[0], cols, line - upper)))
        closing = self._closing_span(cols, line - upper, lat) if self._rest_gap >= 0.04 * mw else span
        self._jaw_box = box
        self._jaw_low = (low * self._max_open).astype(np.float32)
        # Below the line both terms saturate, so the field extends downwards unchanged.
        self._jaw_up, self._jaw_rest_field = {}, {}
        for opening, parts in ((True, span), (False, closing)):
            up = ((1 - parts) * lat * above + parts * up_lip) * head
            self._jaw_up[opening] = (up * self._max_open).astype(np.float32)
            self._jaw_rest_field[opening] = np.where(Y >= line, self._jaw_low, self._jaw_up[opening])
        self._lip_line = line
        self._lip_span = span.astype(np.float32)
        self._lip_across = np.clip(u, -1, 1).astype(np.float32)  # -1 .. 1 from corner to corner
        self._lip_line_row = np.clip(np.round(line - box.y0).astype(int), 0, box.y1 - box.y0 - 1)
        # The band that can change side when the lips move: the mouth box.
        in_span = np.nonzero(np.maximum(span, closing) > 0)[0]
        top = int(line.min() - self._rest_gap - 0.15 * self._max_open) - 2
        bottom = int(line.max() + 1.05 * self._max_open) + 3
        self._mouth_box = _Box(int(cols[in_span[0]]), max(box.y0, top), int(cols[in_span[-1]]) + 1, min(box.y1, bottom))

    def _closing_span(self, cols: np.ndarray, gap: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """How far the lips part per unit of jaw below the portrait's own opening, per column.

        An open-mouthed portrait shows teeth and dark corners out to its outer
        lip corners, further than the face mesh's inner corners reach, so the
        lips must meet along the whole mouth at once as the jaw closes: each
        column closes its own gap (at least a taper from the middle's gap to
        zero at the outer corners), or teeth and corners stay visible as specks.
        """
        p = self.pack.points
        left, right = p[61][0] - 0.04 * self._mouth_w, p[291][0] + 0.04 * self._mouth_w
        u = (cols - (left + right) / 2) / (0.5 * (right - left))
        needed = np.maximum(np.clip(gap, 0, None), self._rest_gap * np.sqrt(np.clip(1 - u**2, 0, 1)))
        needed[needed < 0.5] = 0.0  # under half a pixel: the lips already meet
        return np.clip(needed / (self._rest_gap * (lat + 0.15)) * 1.15, 0.0, 1.2)

    def _eye(self, upper_idx: tuple[int, ...], lower_idx: tuple[int, ...]) -> _Eye:
        p = self.pack.points
        upper_pts, lower_pts = p[list(upper_idx)], p[list(lower_idx)]
        x0, x1 = float(upper_pts[:, 0].min()), float(upper_pts[:, 0].max())
        width = x1 - x0
        height = float((lower_pts[:, 1].max() - upper_pts[:, 1].min()))
        box = _Box(int(x0 - 0.15 * width), int(upper_pts[:, 1].min() - 1.6 * height),
                   int(x1 + 0.15 * width) + 2, int(lower_pts[:, 1].max() + 0.6 * height) + 2)
        cols = np.arange(box.x0, box.x1, dtype=np.float32)
        up, low = _line(upper_pts, cols), _line(lower_pts, cols)
        span = ((cols >= x0) & (cols <= x1)).astype(np.float32)
        low = np.where(span > 0, np.maximum(low, up), up)
        return _Eye(box=box, upper=up, lower=low, brow=up - 1.4 * height, span=span, width=width)

    # --- per frame ---------------------------------------------------------------

    def render(self, m: MotionParams) -> np.ndarray:
        """One ``(S, S, 3)`` uint8 RGB frame for motion ``m``."""
        head = self._head
        hh, hw = head.y1 - head.y0, head.x1 - head.x0
        # 1. Smooth fields: one mat-vec at low resolution, then upsample.
        pucker = max(0.0, -m.mouth_width)  # rounding purses the lips as well as narrowing them
        weights = np.array([pucker if name == "pucker" else getattr(m, name) for name in _SMOOTH], np.float32)
        low = (self._smooth_basis @ weights).reshape(*self._low_shape, 2)
        disp = cv2.resize(low, (hw, hh), interpolation=cv2.INTER_LINEAR)
        map_x = self._grid_x - disp[:, :, 0]
        map_y = self._grid_y - disp[:, :, 1]
        # 2. Jaw: lower face down, lips part along the inner line.
        # Pressing (jaw < 0) lifts the chin only half as far as the lips, so the neck does not stretch.
        # The jaw's fields are the portrait's, carried along by the head's motion at the mouth (to the
        # pixel; roll turns the mouth by under a pixel), or the lips part where the face no longer is.
        delta = max(m.jaw, 0.0) + 0.5 * min(m.jaw, 0.0) - self._jaw_rest
        at = np.round(self._mouth_c).astype(int) - (head.x0, head.y0)
        shift = int(round(float(disp[at[1], at[0], 0]))), int(round(float(disp[at[1], at[0], 1])))
        target, source = self._placed(self._jaw_box, shift)
        map_y[target] -= delta * self._jaw_rest_field[delta > 0][source]
        lips = self._mouth(map_y, disp, delta, 0.5 * min(m.jaw, 0.0), shift)
        # 3. Eyes: lids close, irises look around.
        for eye in self._eyes:
            self._eyelid(eye, map_x, map_y, disp, m)
        # 4. Warp the head box and paste it into the reference.
        frame = self._reference.copy()
        warped = cv2.remap(self._reference, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # 5. Paint the mouth interior.
        if np.any(lips.alpha > 0):
            self._paint_mouth(warped, lips, m.tongue)
        for eye in self._eyes:
            self._lash_line(eye, warped, disp, m)
        frame[head.slices] = warped
        return frame

    def _placed(self, box: _Box, shift: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """``box`` moved by ``shift`` (x, y) pixels: (where it lands in the head box, which part of the box
        lands inside it)."""
        h, (sx, sy) = self._head, shift
        y0, y1 = max(box.y0 + sy, h.y0), min(box.y1 + sy, h.y1)
        x0, x1 = max(box.x0 + sx, h.x0), min(box.x1 + sx, h.x1)
        return ((slice(y0 - h.y0, y1 - h.y0), slice(x0 - h.x0, x1 - h.x0)),
                (slice(y0 - sy - box.y0, y1 - sy - box.y0), slice(x0 - sx - box.x0, x1 - sx - box.x0)))

    def _mouth(self, map_y: np.ndarray, disp: np.ndarray, delta: float, press: float,
               shift: tuple[int, int]) -> _Gap:
        """Re-classify the mouth box into upper lip, lower lip and gap; fix the map there.

        ``press`` (<= 0, the negative part of jaw) moves the lower lip further
        up, over the upper lip's inner edge, fading out towards the box's
        bottom so the chin below does not move: lips pressed together."""
        head, jb, mb = self._head, self._jaw_box, self._mouth_box
        rows = slice(mb.y0 - jb.y0, mb.y1 - jb.y0)
        cols = slice(mb.x0 - jb.x0, mb.x1 - jb.x0)
        c_idx = np.arange(cols.start, cols.stop)
        sx, sy = shift  # the mouth box is drawn moved with the head (see render)
        out_x = c_idx + jb.x0 + sx - head.x0
        # The portrait's column each output column shows (the width and pucker move them sideways),
        # fading to the column itself at the box's sides, where the jaw field outside the box takes over.
        rest_row = self._lip_line_row[cols] + jb.y0 + sy - head.y0
        edges = np.clip(4 * np.minimum(c_idx - cols.start, cols.stop - 1 - c_idx) / (cols.stop - cols.start), 0, 1)
        sideways = (disp[rest_row, out_x, 0] - sx) * edges
        src = np.clip(np.round(c_idx - sideways).astype(int), 0, self._lip_line.size - 1)
        line = self._lip_line[src]
        line_row = self._lip_line_row[src]
        smooth_y = disp[line_row + jb.y0 + sy - head.y0, out_x, 1]
        total = delta + press
        jaw_up, rest_field = self._jaw_up[delta > 0], self._jaw_rest_field[delta > 0]
        edge_low = line + smooth_y + total * self._jaw_low[line_row, src]
        edge_up = line + smooth_y + total * jaw_up[np.maximum(line_row - 1, 0), src]
        ys = np.arange(mb.y0 + sy, mb.y1 + sy, dtype=np.float32)[:, None]
        lower = ys >= edge_low
        field = np.where(lower, self._jaw_low[rows][:, src], jaw_up[rows][:, src])
        sub = slice(mb.y0 + sy - head.y0, mb.y1 + sy - head.y0), slice(mb.x0 + sx - head.x0, mb.x1 + sx - head.x0)
        map_y[sub] += delta * (rest_field[rows, cols] - field)
        if press < 0:
            # The lower lip rides up over the upper lip's edge and its pale inner part
            # rolls in: a p/b/m reads as shut, to a viewer and to the face mesh.
            fade = np.clip(1 - (ys - edge_low) / (mb.y1 + sy - edge_low), 0, 1)
            map_y[sub] -= press * field * (fade * fade * (3 - 2 * fade))
            amount = min(1.0, -press / 0.1)
            below = np.maximum(ys - edge_low, 0)
            roll = self._lower_lip_h * np.exp(-((below / (3.0 * self._lower_lip_h)) ** 2)) * lower
            map_y[sub] += amount * 1.5 * roll * self._lip_span[src][None, :]
        alpha = np.clip(edge_low - ys, 0, 1) * np.clip(ys - edge_up, 0, 1)
        return _Gap(sub=sub, alpha=alpha.astype(np.float32), edge_up=edge_up, edge_low=edge_low, ys=ys, src=src)

    def _paint_mouth(self, warped: np.ndarray, g: _Gap, tongue: float) -> None:
        """The mouth interior between the lips, back to front: the cavity, shaded
        darker towards the throat and under the upper lip; the tongue, a low dome
        on open vowels whose tip rises towards the upper teeth on "l"/"th"
        (``tongue``); the upper teeth (when the portrait shows none) and the
        lower teeth; the corners in shadow."""
        sub, alpha, edge_up, edge_low, ys = g.sub, g.alpha, g.edge_up, g.edge_low, g.ys
        mw = self._mouth_w
        span, across = self._lip_span[g.src], self._lip_across[g.src]
        gap = np.maximum(edge_low - edge_up, 1e-3)
        t = np.clip((ys - edge_up) / gap, 0, 1)  # 0 at the upper lip, 1 at the lower
        # 1. Cavity: warm at the floor, near black at the back and under the upper lip.
        t3 = t[..., None]
        colour = _CAVITY_TOP * (1 - t3**2) + _CAVITY_BOTTOM * t3**2
        back = np.exp(-(across / 0.45) ** 2)[None, :] * np.clip(1 - 2 * np.abs(t - 0.45), 0, 1)
        colour *= (1 - 0.35 * back)[..., None]
        # 2. Tongue: shows once the gap is a few percent of the mouth's width.
        shows = min(1.0, max(0.0, (float(gap.max()) - 0.04 * mw) / (0.06 * mw)))
        if shows > 0:
            dome = np.sqrt(np.clip(1 - (across / 0.8) ** 2, 0, 1))
            tip = np.exp(-(across / 0.3) ** 2)
            height = gap * (0.22 * dome + 0.45 * tongue * tip)  # tongue top, above the lower lip
            top = edge_low - height
            inside = np.clip(ys - top + 0.5, 0, 1) * (height > 0.5)
            lit = np.clip(1 - (ys - top) / (0.25 * gap + 1), 0.0, 1.0)  # the lit upper surface
            tongue_colour = _TONGUE * (0.6 + 0.4 * lit)[..., None]
            a = (inside * shows)[..., None]
            colour = colour * (1 - a) + tongue_colour * a
        # 3. Teeth in front of the tongue.
        if self._rest_gap < 0.04 * mw:  # a closed-mouth portrait has no teeth to reuse
            teeth_h = np.minimum(gap * 0.35, 0.09 * mw)
            teeth = np.clip((edge_up + teeth_h - ys) + 0.5, 0, 1)[..., None]
            colour = colour * (1 - teeth) + _TEETH * teeth
        lower_h = np.minimum(gap * 0.2, 0.05 * mw)
        lower_teeth = np.clip(ys - (edge_low - lower_h) + 0.5, 0, 1)[..., None] * 0.85
        shade = (0.72 + 0.28 * np.clip((ys - (edge_low - lower_h)) / np.maximum(lower_h, 1), 0, 1))[..., None]
        colour = colour * (1 - lower_teeth) + _TEETH * shade * lower_teeth
        # 4. Corners in shadow.
        colour *= (0.45 + 0.55 * np.sqrt(span))[None, :, None]
        a = alpha[..., None]
        region = warped[sub].astype(np.float32)
        warped[sub] = (region * (1 - a) + colour * a + 0.5).astype(np.uint8)

    def _eye_view(self, eye: _Eye, disp: np.ndarray) -> tuple[tuple[slice, slice], float, float]:
        head, box = self._head, eye.box
        sub = slice(box.y0 - head.y0, box.y1 - head.y0), slice(box.x0 - head.x0, box.x1 - head.x0)
        cy, cx = (sub[0].start + sub[0].stop) // 2, (sub[1].start + sub[1].stop) // 2
        return sub, float(disp[cy, cx, 0]), float(disp[cy, cx, 1])

    def _eyelid(self, eye: _Eye, map_x: np.ndarray, map_y: np.ndarray, disp: np.ndarray, m: MotionParams) -> None:
        """Stretch the lid skin down to the closing lid edge; shift the iris for gaze."""
        sub, dx, dy = self._eye_view(eye, disp)
        ys = np.arange(eye.box.y0, eye.box.y1, dtype=np.float32)[:, None] - dy
        blink = float(np.clip(m.blink, 0, 1))
        edge = eye.upper + blink * (eye.lower - eye.upper)
        if blink > 0:
            inside = (ys >= eye.brow) & (ys < edge)
            ratio = (eye.upper - eye.brow) / np.maximum(edge - eye.brow, 1e-3)
            map_y[sub] += np.where(inside, (ys - eye.brow) * (ratio - 1), 0.0)
        if m.gaze_x or m.gaze_y:
            height = np.maximum(eye.lower - edge, 0)
            v = np.clip((ys - edge) / np.maximum(height, 1e-3), 0, 1)
            opening = (4 * v * (1 - v)) * eye.span
            cols = np.arange(eye.box.x0, eye.box.x1, dtype=np.float32)
            across = np.clip(1 - ((cols - cols.mean()) / (0.55 * eye.width)) ** 2, 0, 1)
            weight = opening * across
            map_x[sub] -= m.gaze_x * 0.12 * eye.width * weight
            map_y[sub] -= m.gaze_y * 0.05 * eye.width * weight

    def _lash_line(self, eye: _Eye, warped: np.ndarray, disp: np.ndarray, m: MotionParams) -> None:
        """Darken the closing lid edge, where lashes would be."""
        if m.blink <= 0.15:
            return
        sub, _, dy = self._eye_view(eye, disp)
        ys = np.arange(eye.box.y0, eye.box.y1, dtype=np.float32)[:, None] - dy
        edge = eye.upper + m.blink * (eye.lower - eye.upper)
        shade = 1 - 0.45 * min(1.0, m.blink) * np.exp(-((ys - edge) ** 2) / 2.0) * eye.span
        warped[sub] = (warped[sub] * shade[..., None]).astype(np.uint8)
