"""Bluetooth LE GATT health-profile codecs."""

from __future__ import annotations

from station.devices.codecs.base import CodecSpec, FrameCodec
from station.devices.codecs.gatt import (
    blood_pressure,
    current_time,
    nonin,
    plx,
    racp,
    thermometer,
    weight,
)

CODECS: list[CodecSpec] = [
    FrameCodec(
        blood_pressure.MEASUREMENT_CODEC,
        blood_pressure.VERSION,
        "Blood Pressure Measurement 0x2A35 (indicate)",
        blood_pressure.decode_measurement,
        blood_pressure.QUIRK_SUPPORT,
        blood_pressure.decode_measurement,
    ),
    FrameCodec(
        blood_pressure.INTERMEDIATE_CODEC,
        blood_pressure.VERSION,
        "Intermediate Cuff Pressure 0x2A36 (live cuff pressure)",
        blood_pressure.decode_intermediate,
        blood_pressure.QUIRK_SUPPORT,
        blood_pressure.decode_intermediate,
    ),
    FrameCodec(
        blood_pressure.FEATURE_CODEC,
        blood_pressure.VERSION,
        "Blood Pressure Feature 0x2A49",
        blood_pressure.decode_feature,
    ),
    FrameCodec(
        thermometer.MEASUREMENT_CODEC,
        thermometer.VERSION,
        "Temperature Measurement 0x2A1C (indicate)",
        thermometer.decode_measurement,
    ),
    FrameCodec(
        thermometer.TYPE_CODEC,
        thermometer.VERSION,
        "Temperature Type 0x2A1D",
        thermometer.decode_type,
    ),
    FrameCodec(
        weight.MEASUREMENT_CODEC,
        weight.VERSION,
        "Weight Measurement 0x2A9D (indicate)",
        weight.decode_measurement,
    ),
    FrameCodec(
        weight.FEATURE_CODEC,
        weight.VERSION,
        "Weight Scale Feature 0x2A9E",
        weight.decode_feature,
    ),
    FrameCodec(
        plx.SPOT_CHECK_CODEC,
        plx.VERSION,
        "PLX Spot-check Measurement 0x2A5E (indicate)",
        plx.decode_spot_check,
    ),
    FrameCodec(
        plx.CONTINUOUS_CODEC,
        plx.VERSION,
        "PLX Continuous Measurement 0x2A5F (normal, fast, slow)",
        plx.decode_continuous,
    ),
    FrameCodec(
        plx.FEATURES_CODEC,
        plx.VERSION,
        "PLX Features 0x2A60",
        plx.decode_features,
    ),
    FrameCodec(
        racp.CODEC,
        racp.VERSION,
        "Record Access Control Point 0x2A52 (requests and responses)",
        racp.decode,
    ),
    FrameCodec(
        current_time.CODEC,
        current_time.VERSION,
        "Current Time 0x2A2B",
        current_time.decode,
    ),
    FrameCodec(
        nonin.CODEC,
        nonin.VERSION,
        "Nonin 3230 oximetry frame (proprietary service 46A970E0-…)",
        nonin.decode,
    ),
]
