"""Datasets bundled with the package."""
from .digits import digitsH5, loadDigits
from .inspect import classHistogram, formatReport, inspectH5
