"""shadow-report: prediction-level comparison of a shadow test's production and shadow variants from captured data."""

from .engine import ReportSettings, analyse, choose_variants
from .sources import CaptureFile, ReportError, discover, parse_capture_path

__all__ = ["CaptureFile", "ReportError", "ReportSettings", "analyse", "choose_variants", "discover", "parse_capture_path"]
