"""shadow-report: prediction-level comparison of a shadow test's production and shadow variants from captured data."""

from .engine import Analysis, ReportSettings, analyse, choose_variants
from .sources import CaptureFile, ReportError, discover, parse_capture_path

__all__ = ["Analysis", "CaptureFile", "ReportError", "ReportSettings", "analyse", "choose_variants", "discover", "parse_capture_path"]
