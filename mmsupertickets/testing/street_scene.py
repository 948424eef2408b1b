"""Scene drawing of the synthetic Cityscapes generator.

A street seen from a car: sky, buildings, a road running to a vanishing
point, sidewalks, terrain, trees, poles with lights and signs, and the ten
object classes, each with its own shape and colour. Labels are the train
ids of :mod:`mmsupertickets.testing.cityscapes`, which turns a scene into
one frame and writes the files.
"""
from typing import Tuple

import cv2
import numpy as np

from .drawing import (
    Canvas,
    circle_mask,
    draw_car,
    draw_pedestrian,
    draw_tree,
    draw_wheels,
    draw_window_grid,
    ellipse_mask,
    jitter_color,
    line_mask,
    polygon_mask,
    rect_mask,
)

# Train ids, in the order of ``cityscapes.CLASSES``.
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN,
 SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)

COLORS = {
    ROAD: (95, 85, 100),
    SIDEWALK: (195, 165, 175),
    BUILDING: (112, 110, 106),
    WALL: (205, 185, 135),
    FENCE: (175, 125, 80),
    POLE: (70, 70, 78),
    LIGHT: (35, 35, 30),
    SIGN: (240, 200, 20),
    VEGETATION: (55, 135, 45),
    TERRAIN: (165, 195, 95),
    SKY: (135, 185, 235),
    PERSON: (200, 35, 60),
    RIDER: (245, 135, 20),
    CAR: (30, 50, 170),
    TRUCK: (40, 110, 70),
    BUS: (0, 145, 165),
    TRAIN: (130, 40, 140),
    MOTORCYCLE: (200, 30, 170),
    BICYCLE: (150, 60, 30),
}
# Height of each object at the bottom of the frame, as a fraction of H.
OBJECT_HEIGHT = {
    WALL: 0.14,
    FENCE: 0.16,
    PERSON: 0.45,
    RIDER: 0.45,
    CAR: 0.28,
    TRUCK: 0.38,
    BUS: 0.4,
    TRAIN: 0.32,
    MOTORCYCLE: 0.28,
    BICYCLE: 0.28
}


class Street:
    """Geometry of one scene: horizon, vanishing point and road edges."""

    def __init__(self, canvas: Canvas) -> None:
        rng = canvas.rng
        self.canvas = canvas
        self.h, self.w = canvas.shape
        self.horizon = self.h * rng.uniform(0.38, 0.5)
        self.vx = self.w * rng.uniform(0.4, 0.6)
        self.bottom_left = self.w * rng.uniform(0.05, 0.25)
        self.bottom_right = self.w * rng.uniform(0.75, 0.95)
        self.top_half_width = self.w * rng.uniform(0.015, 0.04)

    def depth(self, y: float) -> float:
        """0 at the horizon, 1 at the bottom row."""
        return float(
            np.clip((y - self.horizon) / (self.h - self.horizon), 0, 1))

    def road_edges(self, y: float) -> Tuple[float, float]:
        """x of the left and right road edge on row ``y``."""
        t = self.depth(y)
        left = (1 - t) * (self.vx - self.top_half_width) + \
            t * self.bottom_left
        right = (1 - t) * (self.vx + self.top_half_width) + \
            t * self.bottom_right
        return left, right

    def size(self, cls: int, y_base: float) -> float:
        """Pixel height of an object standing on row ``y_base``."""
        return OBJECT_HEIGHT[cls] * self.h * (0.25 + 0.75 * self.depth(y_base))

    def sidewalk_x(self, y: float, margin: float) -> float:
        """A random x on the sidewalk of row ``y`` (the road if too narrow)."""
        rng = self.canvas.rng
        left, right = self.road_edges(y)
        sides = []
        if left - margin > margin:
            sides.append((margin, left - margin))
        if self.w - margin > right + margin:
            sides.append((right + margin, self.w - margin))
        if not sides:
            return rng.uniform(0, self.w)
        lo, hi = sides[rng.integers(len(sides))]
        return rng.uniform(lo, hi)

    def road_x(self, y: float) -> float:
        """A random x on the road of row ``y``."""
        left, right = self.road_edges(y)
        return self.canvas.rng.uniform(left + 0.1 * (right - left),
                                       right - 0.1 * (right - left))


def draw_background(street: Street) -> None:
    """Sky, ground, road with lane marks, terrain, buildings and trees."""
    c, rng = street.canvas, street.canvas.rng
    h, w, yh = street.h, street.w, street.horizon
    c.paint(rect_mask(c.shape, 0, yh, w, h), COLORS[SIDEWALK], SIDEWALK)
    road = np.array([[street.bottom_left, h + 1], [street.bottom_right, h + 1],
                     [street.vx + street.top_half_width, yh],
                     [street.vx - street.top_half_width, yh]])
    c.paint(polygon_mask(c.shape, road), COLORS[ROAD], ROAD, texture=10)
    # Dashed centre line: part of the road class, as in Cityscapes.
    bottom_mid = (street.bottom_left + street.bottom_right) / 2
    for t0 in np.arange(0.1, 1.0, 0.18):
        t1 = t0 + 0.09
        p0 = (street.vx + t0 * (bottom_mid - street.vx), yh + t0 * (h - yh))
        p1 = (street.vx + t1 * (bottom_mid - street.vx), yh + t1 * (h - yh))
        c.paint(
            line_mask(c.shape, p0, p1, 1 + 3 * t0), (225, 225, 215),
            ROAD,
            texture=3)
    # Terrain: a verge in one bottom corner, never on the road.
    corner_x = 0 if rng.random() < 0.5 else w
    cy = yh + rng.uniform(0.35, 0.7) * (h - yh)
    verge = ellipse_mask(c.shape, (corner_x, cy),
                         (w * rng.uniform(0.12, 0.2), (h - yh) * 0.25))
    verge &= c.label == SIDEWALK
    c.paint(verge, COLORS[TERRAIN], TERRAIN, texture=14)

    # Buildings: a row of blocks with windows, gaps show the sky.
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = w * rng.uniform(0.08, 0.22)
        if rng.random() > 0.2:
            top = yh - rng.uniform(0.25, 0.85) * yh
            base = yh + 2
            color = jitter_color(rng, COLORS[BUILDING], 14)
            c.paint(rect_mask(c.shape, x, top, x + bw, base), color, BUILDING)
            rows = int((base - top) // 9)
            cols = max(1, int(bw // 8))
            window = (
                color * rng.uniform(0.55, 0.75)
                if rng.random() < 0.5 else np.minimum(255, color * 1.4))
            draw_window_grid(c, x + 2, top + 3, x + bw - 2, base - 4, rows,
                             cols, window, BUILDING)
        x += bw
    for _ in range(rng.integers(1, 4)):
        y = yh + rng.uniform(0.05, 0.35) * (h - yh)
        draw_tree(c, street.sidewalk_x(y, 2), y,
                  h * rng.uniform(0.35, 0.6) * (0.5 + street.depth(y)),
                  COLORS[VEGETATION], VEGETATION)


def draw_pole(street: Street, top: str) -> None:
    """A pole on the sidewalk, topped by a traffic light, a sign or nothing.

    Args:
        street (Street): The scene.
        top (str): ``'light'``, ``'sign'`` or ``'none'``.
    """
    c, rng = street.canvas, street.canvas.rng
    y = street.horizon + rng.uniform(0.1, 0.6) * (street.h - street.horizon)
    x = street.sidewalk_x(y, 3)
    height = street.h * rng.uniform(0.35, 0.55) * (0.6 + street.depth(y))
    y_top = y - height
    thick = max(2., street.w / 110)
    c.paint(
        line_mask(c.shape, (x, y), (x, y_top), thick),
        COLORS[POLE],
        POLE,
        texture=4)
    size = max(5., 0.08 * height + 4)
    if top == 'light':
        c.paint(
            rect_mask(c.shape, x - size / 2, y_top - 2.6 * size, x + size / 2,
                      y_top),
            COLORS[LIGHT],
            LIGHT,
            texture=3)
        lit = rng.integers(3)
        for i, lamp in enumerate([(230, 40, 30), (240, 190, 30),
                                  (40, 210, 80)]):
            lamp = np.asarray(lamp, np.float32) * (1.0 if i == lit else 0.45)
            c.paint(
                circle_mask(c.shape, (x, y_top - (2.15 - 0.8 * i) * size),
                            0.3 * size),
                lamp,
                LIGHT,
                texture=3)
    elif top == 'sign':
        cy = y_top - 0.8 * size
        outer = np.array([[x, cy - size], [x + size, cy + 0.75 * size],
                          [x - size, cy + 0.75 * size]])
        c.paint(polygon_mask(c.shape, outer), (200, 30, 30), SIGN, texture=3)
        inner = (outer - [x, cy]) * 0.6 + [x, cy + 0.1 * size]
        c.paint(polygon_mask(c.shape, inner), COLORS[SIGN], SIGN, texture=3)


def _draw_bicycle(c: Canvas, x: float, y: float, h: float, label: int,
                  color) -> None:
    """Two spoke-less rings joined by a triangular frame."""
    r = 0.3 * h
    thick = max(1., 0.07 * h)
    rear, front = (x - 0.45 * h, y - r), (x + 0.45 * h, y - r)
    ring = np.zeros(c.shape, np.uint8)
    for hub in (rear, front):
        cv2.circle(ring, (int(round(hub[0])), int(round(hub[1]))),
                   max(1, int(round(r))), 1, max(1, int(round(thick))))
    c.paint(ring.astype(bool), (30, 30, 30), label, texture=3)
    seat, bar = (x - 0.1 * h, y - 0.8 * h), (x + 0.32 * h, y - 0.9 * h)
    crank = (x, y - r)
    for p, q in ((rear, seat), (seat, crank), (crank, rear), (seat, bar),
                 (bar, front), (crank, bar)):
        c.paint(line_mask(c.shape, p, q, thick), color, label, texture=4)


def _draw_motorcycle(c: Canvas, x: float, y: float, h: float) -> None:
    """Two solid wheels under a bulky body with a headlight."""
    r = 0.28 * h
    draw_wheels(c, (x - 0.5 * h, x + 0.5 * h), y - r, r, MOTORCYCLE)
    body = np.array([[x - 0.55 * h, y - 0.55 * h], [x - 0.2 * h, y - 0.85 * h],
                     [x + 0.45 * h, y - 0.8 * h], [x + 0.55 * h, y - 0.45 * h],
                     [x - 0.3 * h, y - 0.35 * h]])
    c.paint(polygon_mask(c.shape, body), COLORS[MOTORCYCLE], MOTORCYCLE)
    c.paint(
        circle_mask(c.shape, (x + 0.52 * h, y - 0.7 * h), 0.08 * h),
        (250, 245, 200),
        MOTORCYCLE,
        texture=3)


def _draw_rider(c: Canvas, x: float, y: float, h: float) -> None:
    """A seated person over a bicycle or a motorcycle (labelled apart)."""
    if c.rng.random() < 0.6:
        _draw_bicycle(c, x, y, 0.62 * h, BICYCLE, COLORS[BICYCLE])
    else:
        _draw_motorcycle(c, x, y, 0.62 * h)
    hip = (x - 0.05 * h, y - 0.5 * h)
    pants = np.asarray(COLORS[RIDER], np.float32) * 0.5
    c.paint(
        line_mask(c.shape, hip, (x + 0.05 * h, y - 0.2 * h), 0.1 * h), pants,
        RIDER)
    torso = np.array([[hip[0] - 0.1 * h, hip[1]], [hip[0] + 0.1 * h, hip[1]],
                      [x + 0.12 * h, y - 0.85 * h],
                      [x - 0.06 * h, y - 0.85 * h]])
    c.paint(polygon_mask(c.shape, torso), COLORS[RIDER], RIDER)
    c.paint(
        line_mask(c.shape, (x + 0.05 * h, y - 0.8 * h),
                  (x + 0.22 * h, y - 0.58 * h), 0.07 * h), COLORS[RIDER],
        RIDER)
    c.paint(
        circle_mask(c.shape, (x + 0.05 * h, y - 0.95 * h), 0.1 * h),
        (225, 185, 150), RIDER)


def _draw_truck(c: Canvas, x: float, y: float, h: float) -> None:
    """A tall cargo box behind a lower cab."""
    front = 1 if c.rng.random() < 0.5 else -1
    box_len, cab_len = 2.0 * h, 0.7 * h
    box_x0 = x - front * (box_len + cab_len) / 2
    c.paint(
        rect_mask(c.shape, min(box_x0, box_x0 + front * box_len), y - h,
                  max(box_x0, box_x0 + front * box_len), y - 0.18 * h),
        (150, 150, 95), TRUCK)
    cab_x0 = box_x0 + front * box_len
    c.paint(
        rect_mask(c.shape, min(cab_x0, cab_x0 + front * cab_len), y - 0.7 * h,
                  max(cab_x0, cab_x0 + front * cab_len), y - 0.18 * h),
        COLORS[TRUCK], TRUCK)
    c.paint(
        rect_mask(
            c.shape,
            min(cab_x0 + front * 0.35 * cab_len,
                cab_x0 + front * 0.9 * cab_len), y - 0.62 * h,
            max(cab_x0 + front * 0.35 * cab_len,
                cab_x0 + front * 0.9 * cab_len), y - 0.42 * h),
        (160, 190, 210),
        TRUCK,
        texture=4)
    draw_wheels(c, (box_x0 + front * 0.3 * h, box_x0 + front * 0.8 * h,
                    cab_x0 + front * 0.4 * cab_len), y - 0.17 * h, 0.17 * h,
                TRUCK)


def _draw_long_vehicle(c: Canvas, x: float, y: float, h: float,
                       cls: int) -> None:
    """A bus (with wheels) or a train (longer, rounded nose, no wheels)."""
    length = 2.6 * h if cls == BUS else 5.0 * h
    x0, x1 = x - length / 2, x + length / 2
    c.paint(rect_mask(c.shape, x0, y - h, x1, y - 0.12 * h), COLORS[cls], cls)
    if cls == TRAIN:
        nose_x = x1 if c.rng.random() < 0.5 else x0
        c.paint(
            ellipse_mask(c.shape, (nose_x, y - 0.56 * h),
                         (0.35 * h, 0.44 * h)), COLORS[cls], cls)
        c.paint(
            rect_mask(c.shape, x0, y - 0.2 * h, x1, y - 0.12 * h),
            (40, 40, 40),
            cls,
            texture=3)
    draw_window_grid(c, x0 + 0.1 * h, y - 0.9 * h, x1 - 0.1 * h, y - 0.45 * h,
                     1, max(1, int(length / (0.5 * h))), (170, 200, 215), cls)
    if cls == BUS:
        draw_wheels(c, (x0 + 0.45 * h, x1 - 0.45 * h), y - 0.15 * h, 0.16 * h,
                    cls)


def _draw_wall_or_fence(c: Canvas, x: float, y: float, h: float,
                        cls: int) -> None:
    """A low brick wall, or a see-through fence of posts and rails."""
    length = h * c.rng.uniform(3, 6)
    x0, x1 = x - length / 2, x + length / 2
    if cls == WALL:
        c.paint(rect_mask(c.shape, x0, y - h, x1, y), COLORS[WALL], WALL)
        for yy in np.arange(y - h + 3, y, 4):
            c.paint(
                rect_mask(c.shape, x0, yy, x1, yy + 1),
                np.asarray(COLORS[WALL]) * 0.8,
                WALL,
                texture=3)
        return
    thick = max(1., h / 10)
    for px in np.arange(x0, x1 + 1, max(3., h / 3)):
        c.paint(
            line_mask(c.shape, (px, y), (px, y - h), thick),
            COLORS[FENCE],
            FENCE,
            texture=4)
    for ry in (y - 0.85 * h, y - 0.4 * h):
        c.paint(
            line_mask(c.shape, (x0, ry), (x1, ry), thick),
            COLORS[FENCE],
            FENCE,
            texture=4)


def draw_object(street: Street, cls: int, y: float) -> None:
    """Draw one object class standing on row ``y`` at a fitting place."""
    c = street.canvas
    h = street.size(cls, y)
    if cls in (CAR, TRUCK, BUS, MOTORCYCLE):
        x = street.road_x(y)
    elif cls in (PERSON, BICYCLE, RIDER):
        x = street.sidewalk_x(y, 2)
    else:
        x = c.rng.uniform(0.1, 0.9) * street.w
    if cls == CAR:
        draw_car(c, x, y, h, jitter_color(c.rng, COLORS[CAR], 20), CAR)
    elif cls == PERSON:
        draw_pedestrian(c, x, y, h, jitter_color(c.rng, COLORS[PERSON], 20),
                        PERSON)
    elif cls == RIDER:
        _draw_rider(c, x, y, h)
    elif cls == BICYCLE:
        _draw_bicycle(c, x, y, h, BICYCLE, COLORS[BICYCLE])
    elif cls == MOTORCYCLE:
        _draw_motorcycle(c, x, y, h)
    elif cls == TRUCK:
        _draw_truck(c, x, y, h)
    elif cls in (BUS, TRAIN):
        _draw_long_vehicle(c, x, y, h, cls)
    elif cls in (WALL, FENCE):
        _draw_wall_or_fence(c, x, y, h, cls)


def object_row(street: Street, cls: int) -> float:
    """Where an object class stands: far for walls and trains."""
    rng = street.canvas.rng
    span = street.h - street.horizon
    if cls in (WALL, FENCE):
        return street.horizon + rng.uniform(0.02, 0.12) * span
    if cls == TRAIN:
        return street.horizon + rng.uniform(0.1, 0.3) * span
    return street.horizon + rng.uniform(0.3, 0.97) * span
